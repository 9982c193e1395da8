"""One model of AWS Lambda's Python runtime, used by the build's import check and by `relay invoke`.

- `runtimes.py`: which runtimes exist, their Python and the Linux they run on;
- `mount.py`: the function zip as `/var/task`, layer zips in `/opt`, and the sys.path built from them;
- `provided.py`: what the runtime ships (the AWS SDK), linked into a `/var/runtime` stand-in;
- `environment.py`: the variables Lambda sets and the context's fields;
- `interpreter.py`: which Python runs the function here (qemu-user for the other machine), and the host's architecture;
- `bootstrap.py`: the code that runs inside the child interpreter (stdlib only);
- `child.py`: running it with Lambda's time limits and collecting the outcome;
- `check.py`: Lambda's init checked here (the import check): imported, or resolved statically
  (`static.py`, with `initcode.py`, `stdlib.py`, `distributions.py`, `extensions.py`) when this
  machine cannot import the bundle; `invocation.py`: one invocation;
- `event.py`, `published.py`: an invocation's event, and a function fetched from a release.
"""

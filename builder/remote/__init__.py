"""After the deploy: an environment's function as its users meet it (its CloudWatch Logs, invoking its alias).

`records` holds what the AWS seam returns (no boto3), `logs` and `invoke` the
logic and results of `relay logs` and `relay invoke --env`, `factory` the
wiring into the environment's account (the session promote uses).
"""

"""A CycloneDX 1.5 JSON SBOM per bundle, made here rather than by cyclonedx-bom.

Why not `cyclonedx-py requirements --output-reproducible`: it would add a
dependency tree and a subprocess per bundle, and its output depends on its own
version. This SBOM is a pure function of the bundle's manifest (whose `lock`
holds the lock's sha256 and every `name==version` it pins), so any relay run,
offline, produces the same bytes for the same manifest, and the provenance can
name its digest. No timestamp; the serial number is a UUIDv5 of the content.
Per-package hashes are left out: a lock lists the hashes of every candidate
file, not of the one installed, and scanners match on the purl.
"""

from __future__ import annotations

import uuid

from builder.dist import zip_name
from builder.models import Manifest
from builder.registry.release import canonical_json

SPEC_VERSION = "1.5"
_NAMESPACE = uuid.UUID("6f1c3c1e-2d2e-5b8a-9a51-1a7e6c0d4f10")


def bundle_sbom(manifest: Manifest) -> bytes:
    components = [_component(pin) for pin in sorted(manifest.lock.packages if manifest.lock else ())]
    ref = zip_name(manifest.bundle_name)
    subject: dict = {
        "type": "application" if manifest.kind == "function" else "library",
        "bom-ref": ref,
        "name": manifest.name,
        "hashes": [{"alg": "SHA-256", "content": manifest.sha256}],
        "properties": _properties(manifest),
    }
    if manifest.version:
        subject["version"] = manifest.version
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "relay", "version": manifest.relay_version}]},
            "component": subject,
        },
        "components": components,
        "dependencies": [{"ref": ref, "dependsOn": [c["bom-ref"] for c in components]}],
    }
    doc["serialNumber"] = f"urn:uuid:{uuid.uuid5(_NAMESPACE, canonical_json(doc).decode('utf-8'))}"
    return canonical_json(doc)


def _component(pin: str) -> dict:
    name, _, version = pin.partition("==")
    purl = f"pkg:pypi/{name}@{version}"
    return {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}


def _properties(manifest: Manifest) -> list[dict]:
    found = [
        {"name": "relay:kind", "value": manifest.kind},
        {"name": "relay:runtime", "value": manifest.runtime},
        {"name": "relay:architecture", "value": manifest.architecture},
    ]
    if manifest.lock:
        found.append({"name": "relay:lock", "value": manifest.lock.path})
        found.append({"name": "relay:lock-sha256", "value": manifest.lock.sha256})
    return found

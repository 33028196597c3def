"""Run an xgraph artifact with only the standard library, numpy, jax and flatbuffers (no xgraph).

    python load_artifact_without_xgraph.py model.xgraph inputs.npz [outputs.npz]

``inputs.npz`` holds one array per input name.  The outputs are printed (and
saved when a third argument is given).  The same code is in docs/artifacts.md.
"""
import hashlib
import io
import json
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np


def load(path):
    """Verify every member's SHA-256, then return (manifest, run); run(**inputs) -> {name: array}."""
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        if manifest.get("format") != "xgraph-artifact" or manifest.get("format_version") != 1:
            raise ValueError("not a version 1 xgraph artifact")
        blobs = {}
        for name, digest in manifest["members"].items():
            blobs[name] = zf.read(name)
            if hashlib.sha256(blobs[name]).hexdigest() != digest:
                raise ValueError(f"checksum mismatch for {name}")
    exported = jax.export.deserialize(bytearray(blobs["module.jaxexport"]))
    with np.load(io.BytesIO(blobs["params.npz"]), allow_pickle=False) as z:
        stored = {k: z[k] for k in z.files}

    def run(**inputs):
        args = []
        for a in manifest["call_args"]:            # inputs, seed, parameters, aux states, in order
            if a["kind"] == "input":
                args.append(jnp.asarray(inputs[a["name"]], a["dtype"]))
            elif a["kind"] == "seed":
                args.append(np.uint32(inputs.get("seed", 0)))
            else:                                   # bfloat16 is stored as uint16: view it back
                args.append(jnp.asarray(stored[a["kind"] + ":" + a["name"]].view(jnp.dtype(a["dtype"]))))
        results = exported.call(*args)
        return {(r["name"] if r["kind"] == "output" else r["kind"] + ":" + r["name"]): np.asarray(v)
                for r, v in zip(manifest["call_results"], results)}
    return manifest, run


if __name__ == "__main__":
    manifest, run = load(sys.argv[1])
    with np.load(sys.argv[2], allow_pickle=False) as z:
        outputs = run(**{k: z[k] for k in z.files})
    for name, value in outputs.items():
        print(name, value.shape, value.dtype)
    if len(sys.argv) > 3:
        np.savez(sys.argv[3], **outputs)

"""Peer side of `netport export`'s interop tests (crates/torch-onnx/tests/it/interop.rs).

Runs in the peer venv (torch 2.x, torchvision, onnx, onnxruntime) or, for
`make --legacy`, in the Caffe2 venv (Python 3.7, torch 1.4, torchvision 0.5).
Files go to a folder the test gives (a temporary or cache folder), never into git.

    python torchvision_export.py make DIR CASE...
        CASE = NAME:ARCH:CLASSES:H:W, e.g. r18:resnet18:2:64:64
        torch builds torchvision.models.ARCH(num_classes=CLASSES) with its
        random init, then randomises every BatchNorm's weight, bias and running
        statistics (so a wrong epsilon, a swapped mean/var or a training-mode
        BatchNorm shows), saves the state_dict to DIR/NAME.pt, a random input
        [2, 3, H, W] to DIR/NAME.input.npy and the eval-mode output to
        DIR/NAME.output.npy.
        --legacy: torch.save(..., _use_new_zipfile_serialization=False) when
        torch has it (torch 1.4 writes the legacy format anyway),
        pickle_protocol=4, every storage tagged cuda:0 (location_tag patched, as
        testdata/make_torch_fixtures.py does for cuda_tagged.pt).
    python torchvision_export.py verify [--no-torch-export] DIR ONNX:NAME:ARCH:CLASSES...
        runs each model in onnxruntime on DIR/NAME.input.npy, compares with
        DIR/NAME.output.npy (rtol 1e-4, atol 1e-5) and runs
        onnx.checker.check_model(full_check=True); also exports the same model
        (weights from DIR/NAME.pt) with torch.onnx.export(dynamo=False) at the
        same opset and reports its op types, node count and its own distance
        from torch in onnxruntime. torch's file is written to a folder of its
        own under DIR and removed once measured (with any external data it
        wrote), so a test holds one of them at a time on disk.
        --no-torch-export: leaves torch's export out (for models whose only
        question is ours against torch's output, such as vit_h_14, where
        torch's file would be 2.5 GB more). One JSON line per model.
"""

import json
import shutil
import sys
import tempfile


def build(arch, classes, state_dict=None, image_size=None):
    import torchvision

    kwargs = {"num_classes": classes}
    if arch.startswith("vit_") and image_size is not None:
        kwargs["image_size"] = image_size
    # MaxViT's grid attention is sized for the input it is built for.
    if arch.startswith("maxvit_") and image_size is not None:
        kwargs["input_size"] = (image_size, image_size)
    # ARCH+aux: GoogLeNet / Inception v3 with their auxiliary heads (the
    # builders' default without weights); plain: without them.
    # ARCH+ti: with transform_input=True (the pretrained weights' setting).
    aux = "+aux" in arch
    ti = "+ti" in arch
    arch = arch.replace("+aux", "").replace("+ti", "")
    if arch in ("googlenet", "inception_v3"):
        kwargs["aux_logits"] = aux
        kwargs["init_weights"] = True
        kwargs["transform_input"] = ti
    model = getattr(torchvision.models, arch)(**kwargs)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model.eval()


def randomise(model, torch, h, w):
    """Random BatchNorm affine weights, then running statistics calibrated on
    random batches (so activations stay in range through deep nets) and
    perturbed per channel (so a wrong epsilon, swapped mean/var or batch
    statistics instead of running ones show)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # Parameters initialised to zero (heads, biases) would hide a wrong
        # graph behind a constant output.
        for p in model.parameters():
            if p.numel() and float(p.abs().max()) == 0.0:
                p.normal_(0.0, 0.02, generator=g)
    bns = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d))]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.2)
            m.momentum = None  # cumulative average over the calibration batches
            m.reset_running_stats()
        if bns:
            # Auxiliary heads (not run in eval mode) are left out of the
            # calibration: they need larger inputs than the tests use.
            aux = {k: getattr(model, k) for k in ("aux1", "aux2", "AuxLogits") if getattr(model, k, None) is not None}
            for k in aux:
                setattr(model, k, None)
            # Only BatchNorm in training mode: stochastic depth and dropout
            # stay as in eval, so the statistics are those eval sees.
            model.eval()
            for m in bns:
                m.train()
            for _ in range(2):
                model(torch.randn(16 if h * w <= 64 * 64 else 4, 3, h, w, generator=g))
            model.eval()
            for k, m in aux.items():
                setattr(model, k, m)
        for m in bns:
            n = m.num_features
            m.running_mean.add_(torch.randn(n, generator=g) * 0.1 * m.running_var.sqrt())
            m.running_var.mul_(torch.rand(n, generator=g) * 0.7 + 0.7)
            m.momentum = 0.1
            m.num_batches_tracked.fill_(7)


def make(out, cases, legacy):
    import numpy as np
    import torch

    torch.manual_seed(0)
    for case in cases:
        name, arch, classes, h, w = case.split(":")
        # ARCH+badhead: the head replaced by Linear(500, CLASSES), which fits
        # no family (no output is computed; the file is for refusal tests).
        bad_head = "+badhead" in arch
        arch = arch.replace("+badhead", "")
        model = build(arch, int(classes), image_size=int(h))
        randomise(model, torch, int(h), int(w))
        x = torch.randn(2, 3, int(h), int(w), generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            y = model(x)
        if bad_head:
            model.fc = torch.nn.Linear(500, int(classes))
        path = "%s/%s.pt" % (out, name)
        sd = model.state_dict()
        if legacy:
            orig = torch.serialization.location_tag
            torch.serialization.location_tag = lambda storage: "cuda:0"
            try:
                kw = {"pickle_protocol": 4}
                if "_use_new_zipfile_serialization" in torch.save.__code__.co_varnames:
                    kw["_use_new_zipfile_serialization"] = False
                torch.save(sd, path, **kw)
            finally:
                torch.serialization.location_tag = orig
        else:
            torch.save(sd, path)
        np.save("%s/%s.input.npy" % (out, name), x.numpy())
        np.save("%s/%s.output.npy" % (out, name), y.numpy())
        print(json.dumps({"case": name, "torch": torch.__version__, "path": path}))


def op_counts(model):
    ops = {}
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return ops


def verify(out, items, torch_export=True):
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch

    def run(path, x):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    for item in items:
        model_path, name, arch, classes = item.rsplit(":", 3)
        x = np.load("%s/%s.input.npy" % (out, name))
        expected = np.load("%s/%s.output.npy" % (out, name))
        ours = onnx.load(model_path)
        opset = [o.version for o in ours.opset_import if o.domain in ("", "ai.onnx")][0]
        result = {"model": model_path, "case": name, "opset": opset, "nodes": len(ours.graph.node),
                  "ops": op_counts(ours)}
        try:
            onnx.checker.check_model(model_path, full_check=True)
            result["checker"] = "ok"
        except Exception as e:  # the test reports it
            result["checker"] = str(e)[:500]
        try:
            got = run(model_path, x)
            result["shape"] = list(got.shape)
            same = got.shape == expected.shape
            result["max_abs_diff"] = float(np.max(np.abs(got - expected))) if same else None
            result["allclose"] = bool(same and np.allclose(got, expected, rtol=1e-4, atol=1e-5))
        except Exception as e:
            result["ort"] = str(e)[:500]
            result["allclose"] = False
        if not torch_export:
            print(json.dumps(result), flush=True)
            continue
        # torch's own exporter on the same weights, at the same opset: its op
        # types and node count, and how far its model is from torch in
        # onnxruntime (the float32 noise floor of a deep net).
        # Our own file (possibly torch 1.4's legacy format, which torch 2's
        # weights_only unpickler refuses).
        sd = torch.load("%s/%s.pt" % (out, name), map_location="cpu", weights_only=False)
        model = build(arch, int(classes), sd, image_size=x.shape[2])
        scratch = tempfile.mkdtemp(prefix="torch-export-", dir=out)
        path = "%s/%s.torch.opset%d.onnx" % (scratch, name, opset)
        try:
            torch.onnx.export(model, torch.from_numpy(x), path, opset_version=opset, input_names=["input"],
                              output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)
            theirs = onnx.load(path)
            result["torch_nodes"] = len(theirs.graph.node)
            result["torch_ops"] = op_counts(theirs)
            result["torch_max_abs_diff"] = float(np.max(np.abs(run(path, x) - expected)))
        except Exception as e:
            result["torch_export"] = str(e)[:300]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(json.dumps(result), flush=True)


def main(argv):
    cmd = argv[1]
    if cmd == "make":
        legacy = "--legacy" in argv
        args = [a for a in argv[2:] if a != "--legacy"]
        make(args[0], args[1:], legacy)
    elif cmd == "verify":
        args = [a for a in argv[2:] if a != "--no-torch-export"]
        verify(args[0], args[1:], torch_export="--no-torch-export" not in argv)
    else:
        raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)

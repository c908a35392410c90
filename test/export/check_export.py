#!/usr/bin/python3
"""Loads files written by `convnext export` in PyTorch and checks their logits against ours.

Usage: /usr/bin/python3 test/export/check_export.py <manifest.json>

The manifest (written by test/export/pytorch.test.ts) lists cases:
  {"name", "layout", "file", "version", "depths", "dims", "num_classes", "conv_mlp",
   "input": NCHW float32 .npy, "logits": our logits .npy}
For each case the file is read the way its ecosystem reads it, and loaded with strict=True into a
module whose parameter names and shapes are that ecosystem's:
  official     torch.load(f, weights_only=True)['model'] -> RefConvNeXt (test/parity/make_fixtures.py,
               mirrors facebookresearch ConvNeXt / ConvNeXt-V2 models/convnext(v2).py)
  torchvision  torch.load(f, weights_only=True) -> torchvision.models.convnext.ConvNeXt itself
  timm         safetensors -> TimmConvNeXt below, which mirrors timm models/convnext.py's module
               tree (stem, stages[i].downsample / .blocks[j].conv_dw/norm/mlp(.grn)/gamma, head.norm/fc;
               conv_mlp: 1x1-conv MLP and LayerNorm2d) -- timm itself is not installed here
  hf           config.json (depths, hidden_sizes, layer_norm_eps, id2label) + safetensors ->
               HFConvNext below, which mirrors transformers' ConvNext(V2)ForImageClassification
               module tree -- transformers is not installed here
Passes when max|ours - theirs| <= 1e-4 * max(1, max|theirs|) and the argmax is identical.
Prints one JSON line per case, then exits 0 if all pass, 1 otherwise.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "parity"))
import make_fixtures as mf  # noqa: E402  (RefConvNeXt, make_tv_model, load_safetensors)

TOLERANCE = 1e-4


class LayerNorm2d(nn.LayerNorm):
    """timm layers/norm.py LayerNorm2d: LayerNorm over C of NCHW."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class TimmGRN(nn.Module):
    """timm layers/grn.py GlobalResponseNorm (weight/bias [C])."""

    def __init__(self, dim, channels_last):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.spatial, self.channel = ((1, 2), -1) if channels_last else ((2, 3), 1)
        self.channels_last = channels_last

    def forward(self, x):
        g = x.norm(p=2, dim=self.spatial, keepdim=True)
        n = g / (g.mean(dim=self.channel, keepdim=True) + 1e-6)
        shape = (1, 1, 1, -1) if self.channels_last else (1, -1, 1, 1)
        return x + torch.addcmul(self.bias.view(shape), self.weight.view(shape), x * n)


class TimmMlp(nn.Module):
    """timm Mlp / ConvMlp / GlobalResponseNormMlp: fc1, act, (grn), fc2."""

    def __init__(self, dim, conv, grn):
        super().__init__()
        lin = (lambda i, o: nn.Conv2d(i, o, 1)) if conv else nn.Linear
        self.fc1 = lin(dim, 4 * dim)
        self.act = nn.GELU()
        if grn:
            self.grn = TimmGRN(4 * dim, channels_last=not conv)
        self.fc2 = lin(4 * dim, dim)

    def forward(self, x):
        x = self.act(self.fc1(x))
        if hasattr(self, "grn"):
            x = self.grn(x)
        return self.fc2(x)


class TimmBlock(nn.Module):
    def __init__(self, dim, conv_mlp, version):
        super().__init__()
        self.conv_mlp = conv_mlp
        self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6) if conv_mlp else nn.LayerNorm(dim, eps=1e-6)
        self.mlp = TimmMlp(dim, conv_mlp, grn=version == 2)
        if version == 1:
            self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        shortcut = x
        x = self.conv_dw(x)
        if self.conv_mlp:
            x = self.mlp(self.norm(x))
            if hasattr(self, "gamma"):
                x = x.mul(self.gamma.reshape(1, -1, 1, 1))
        else:
            x = self.mlp(self.norm(x.permute(0, 2, 3, 1)))
            if hasattr(self, "gamma"):
                x = x.mul(self.gamma)
            x = x.permute(0, 3, 1, 2)
        return x + shortcut


class TimmStage(nn.Module):
    def __init__(self, cin, cout, depth, conv_mlp, version):
        super().__init__()
        self.downsample = nn.Identity() if cin == cout else nn.Sequential(LayerNorm2d(cin, eps=1e-6), nn.Conv2d(cin, cout, 2, 2))
        self.blocks = nn.Sequential(*[TimmBlock(cout, conv_mlp, version) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class TimmHead(nn.Module):
    """timm NormMlpClassifierHead without hidden layer: pool, LayerNorm2d, flatten, fc."""

    def __init__(self, dim, num_classes):
        super().__init__()
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.norm(x.mean((2, 3), keepdim=True))
        return self.fc(x.flatten(1))


class TimmConvNeXt(nn.Module):
    def __init__(self, depths, dims, num_classes, conv_mlp, version):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))
        self.stages = nn.Sequential(*[TimmStage(dims[max(i - 1, 0)], dims[i], depths[i], conv_mlp, version) for i in range(4)])
        self.head = TimmHead(dims[-1], num_classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


# transformers ConvNextLayerNorm(data_format="channels_first") has FB's parameter names and arithmetic.
HFLayerNormCF = mf.LayerNormCF


class HFLayer(nn.Module):
    def __init__(self, dim, version, ls_init):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.layernorm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        if version == 2:
            self.grn = mf.GRN(4 * dim, names=("weight", "bias"))  # transformers ConvNextV2GRN
        self.pwconv2 = nn.Linear(4 * dim, dim)
        if version == 1 and ls_init > 0:
            self.layer_scale_parameter = nn.Parameter(ls_init * torch.ones(dim))

    def forward(self, x):
        y = self.layernorm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.act(self.pwconv1(y))
        if hasattr(self, "grn"):
            y = self.grn(y)
        y = self.pwconv2(y)
        if hasattr(self, "layer_scale_parameter"):
            y = self.layer_scale_parameter * y
        return x + y.permute(0, 3, 1, 2)


class HFStage(nn.Module):
    def __init__(self, cin, cout, depth, version, ls_init, first):
        super().__init__()
        self.downsampling_layer = nn.Identity() if first else nn.Sequential(HFLayerNormCF(cin), nn.Conv2d(cin, cout, 2, 2))
        self.layers = nn.Sequential(*[HFLayer(cout, version, ls_init) for _ in range(depth)])

    def forward(self, x):
        return self.layers(self.downsampling_layer(x))


class HFEmbeddings(nn.Module):
    def __init__(self, cin, dim, patch):
        super().__init__()
        self.patch_embeddings = nn.Conv2d(cin, dim, patch, patch)
        self.layernorm = HFLayerNormCF(dim)

    def forward(self, x):
        return self.layernorm(self.patch_embeddings(x))


class HFEncoder(nn.Module):
    def __init__(self, cfg, version):
        super().__init__()
        d, h = cfg["depths"], cfg["hidden_sizes"]
        ls = cfg.get("layer_scale_init_value", 0.0)
        self.stages = nn.ModuleList(HFStage(h[max(i - 1, 0)], h[i], d[i], version, ls, i == 0) for i in range(cfg["num_stages"]))

    def forward(self, x):
        for s in self.stages:
            x = s(x)
        return x


class HFBackbone(nn.Module):
    def __init__(self, cfg, version):
        super().__init__()
        self.embeddings = HFEmbeddings(cfg["num_channels"], cfg["hidden_sizes"][0], cfg["patch_size"])
        self.encoder = HFEncoder(cfg, version)
        self.layernorm = nn.LayerNorm(cfg["hidden_sizes"][-1], eps=cfg["layer_norm_eps"])

    def forward(self, x):
        return self.layernorm(self.encoder(self.embeddings(x)).mean([-2, -1]))


class HFConvNext(nn.Module):
    """ConvNext(V2)ForImageClassification: backbone under 'convnext' / 'convnextv2', 'classifier'."""

    def __init__(self, cfg):
        super().__init__()
        version = 2 if cfg["model_type"] == "convnextv2" else 1
        self.prefix = "convnextv2" if version == 2 else "convnext"
        setattr(self, self.prefix, HFBackbone(cfg, version))
        self.classifier = nn.Linear(cfg["hidden_sizes"][-1], len(cfg["id2label"]))

    def forward(self, x):
        return self.classifier(getattr(self, self.prefix)(x))


def build_and_load(case):
    layout, f = case["layout"], case["file"]
    depths, dims, k, v = case["depths"], case["dims"], case["num_classes"], case["version"]
    info = {}
    if layout == "official":
        obj = torch.load(f, weights_only=True)
        assert isinstance(obj, dict) and list(obj) == ["model"], f"expected {{'model': ...}}, got keys {list(obj)}"
        sd = obj["model"]
        model = mf.RefConvNeXt(depths, dims, k, version=v)
    elif layout == "torchvision":
        sd = torch.load(f, weights_only=True)
        model = mf.make_tv_model(depths, dims, k)
    elif layout == "timm":
        sd = mf.load_safetensors(f)
        model = TimmConvNeXt(depths, dims, k, case["conv_mlp"], v)
    elif layout == "hf":
        cfg_path = os.path.join(os.path.dirname(f), "config.json")
        with open(cfg_path) as fh:
            cfg = json.load(fh)
        assert cfg["depths"] == depths and cfg["hidden_sizes"] == dims, "config.json disagrees with the model"
        model = HFConvNext(cfg)
        sd = mf.load_safetensors(f)
        info["id2label"] = [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]
    else:
        raise ValueError(layout)
    info["dtype"] = str(next(iter(sd.values())).dtype).replace("torch.", "")
    sd = {kk: vv.float() for kk, vv in sd.items()}
    model.load_state_dict(sd, strict=True)  # raises on any missing/unexpected/mis-shaped key
    model.eval()
    return model, info


def check(case):
    model, info = build_and_load(case)
    x = torch.from_numpy(np.load(case["input"]))
    with torch.no_grad():
        theirs = model(x).numpy()
    ours = np.load(case["logits"])
    scale = max(1.0, float(np.abs(theirs).max()))
    diff = float(np.abs(ours - theirs).max())
    argmax = bool((ours.argmax(1) == theirs.argmax(1)).all())
    ok = ours.shape == theirs.shape and diff <= TOLERANCE * scale and argmax
    return dict(name=case["name"], layout=case["layout"], ok=ok, max_abs_diff=diff, scale=scale,
                argmax_equal=argmax, strict_keys=len(model.state_dict()), **info)


def main():
    with open(sys.argv[1]) as fh:
        cases = json.load(fh)
    all_ok = True
    for case in cases:
        try:
            r = check(case)
        except Exception as e:  # report and go on: one line per case
            r = dict(name=case["name"], layout=case["layout"], ok=False, error=f"{type(e).__name__}: {e}")
        all_ok = all_ok and r["ok"]
        print(json.dumps(r), flush=True)
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()

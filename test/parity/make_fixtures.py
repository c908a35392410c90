#!/usr/bin/python3
"""Parity fixture generator for convnext-tfjs.

Builds ConvNeXt V1/V2 reference models in PyTorch with non-trivial random
weights, writes their weights in the real on-disk form of each checkpoint
layout (official FB/FB2, timm, torchvision, Hugging Face .bin/.safetensors),
and writes the reference outputs (logits, pre-logits, every stage's output) for
a fixed input.  See test/parity/README.md.

Reference implementations
  V1: torchvision.models.convnext.ConvNeXt itself (independent implementation).
  V2: RefConvNeXt below, a small module that mirrors FB2 models/convnextv2.py
      (FB2 parameter names).  With version=1 the same module mirrors FB
      models/convnext.py; it is used to cross-check torchvision and to verify
      the official/timm/HF files after they are read back from disk.

Usage (run with the Debian interpreter, which has torch):
  /usr/bin/python3 test/parity/make_fixtures.py                 # small, committed
  /usr/bin/python3 test/parity/make_fixtures.py --full --out test/parity/full
  ... --only v1_hf,v2_timm   ... --skip-existing   ... --list
"""

import argparse
import copy
import json
import math
import os
import re
import shutil
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.convnext import CNBlock, CNBlockConfig
from torchvision.models.convnext import ConvNeXt as TVConvNeXt

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "test"))
sys.dont_write_bytecode = True  # no __pycache__ in the tree

from pyref import safetensors_io  # noqa: E402
from pyref.cases import select_cases  # noqa: E402
DEFAULT_SMALL_OUT = os.path.join(REPO, "test", "fixtures", "parity")

BLOCK_EPS = 1e-6          # every LN except HF's final one
HF_FINAL_EPS = 1e-12      # transformers ConvNext(V2)Config.layer_norm_eps default
GENERATOR_VERSION = 1    # bump when outputs change; --skip-existing regenerates older cases
TOLERANCE = 1e-4          # |ours - ref| <= TOLERANCE * max(1, max|ref|)
MIN_BRANCH_RATIO = 0.05   # every block's residual branch must matter


# --------------------------------------------------------------------------
# Reference module (FB / FB2 semantics and parameter names)
# --------------------------------------------------------------------------

class LayerNormCF(nn.Module):
    """FB's LayerNorm(data_format='channels_first'): normalise over dim 1 of NCHW."""

    def __init__(self, dim, eps=BLOCK_EPS):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """FB2 models/utils.py GRN on NHWC input; gamma/beta are [1,1,1,C]. transformers'
    ConvNextV2GRN is the same module with the names weight/bias (names=("weight", "bias"))."""

    def __init__(self, dim, names=("gamma", "beta")):
        super().__init__()
        self.names = names
        for n in names:
            self.register_parameter(n, nn.Parameter(torch.zeros(1, 1, 1, dim)))

    def forward(self, x):
        gamma, beta = (getattr(self, n) for n in self.names)
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return gamma * (x * nx) + beta + x


class Block(nn.Module):
    """V1 (layer scale `gamma`) or V2 (GRN, no layer scale) ConvNeXt block."""

    def __init__(self, dim, version):
        super().__init__()
        self.version = version
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=BLOCK_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()  # exact erf form
        if version == 2:
            self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        if version == 1:
            self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        inp = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        if self.version == 2:
            x = self.grn(x)
        x = self.pwconv2(x)
        if self.version == 1:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)
        return inp + x


class RefConvNeXt(nn.Module):
    def __init__(self, depths, dims, num_classes, version, final_eps=BLOCK_EPS):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(3, dims[0], kernel_size=4, stride=4), LayerNormCF(dims[0])))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                LayerNormCF(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList(
            nn.Sequential(*[Block(dims[i], version) for _ in range(depths[i])]) for i in range(4))
        self.norm = nn.LayerNorm(dims[-1], eps=final_eps)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward_all(self, x):
        stages = []
        for i in range(4):
            x = self.downsample_layers[i](x)
            x = self.stages[i](x)
            stages.append(x)
        pre = self.norm(x.mean([-2, -1]))
        return {"stages": stages, "prelogits": pre, "logits": self.head(pre)}

    def forward(self, x):
        return self.forward_all(x)["logits"]


def make_tv_model(depths, dims, num_classes, layer_scale=1e-6):
    settings = [CNBlockConfig(dims[i], dims[i + 1] if i < 3 else None, depths[i]) for i in range(4)]
    return TVConvNeXt(settings, stochastic_depth_prob=0.0, layer_scale=layer_scale,
                      num_classes=num_classes)


def tv_forward_all(model, x):
    stages = []
    for idx, m in enumerate(model.features):  # stem, s0, ds1, s1, ds2, s2, ds3, s3
        x = m(x)
        if idx % 2 == 1:
            stages.append(x)
    pooled = model.avgpool(x)
    pre = torch.flatten(model.classifier[0](pooled), 1)
    return {"stages": stages, "prelogits": pre, "logits": model.classifier[2](pre)}


def forward_all(model, x):
    model.eval()
    with torch.no_grad():
        if isinstance(model, TVConvNeXt):
            return tv_forward_all(model, x)
        return model.forward_all(x)


def set_final_eps(model, eps):
    if isinstance(model, TVConvNeXt):
        model.classifier[0].eps = eps
    else:
        model.norm.eps = eps


# --------------------------------------------------------------------------
# Non-trivial random weights
# --------------------------------------------------------------------------

def randomize_(model, gen):
    def randn(shape):
        return torch.randn(tuple(shape), generator=gen)

    def layer_scale(shape):
        mag = 0.3 + 0.7 * torch.rand(tuple(shape), generator=gen)
        sign = torch.where(torch.rand(tuple(shape), generator=gen) < 0.5, -1.0, 1.0)
        return mag * sign

    with torch.no_grad():
        for _, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()  # in/groups * kh * kw
                m.weight.copy_(randn(m.weight.shape) / math.sqrt(fan_in))
                if m.bias is not None:
                    m.bias.copy_(0.1 * randn(m.bias.shape))
            elif isinstance(m, (nn.LayerNorm, LayerNormCF)):
                m.weight.copy_(1.0 + 0.2 * randn(m.weight.shape))
                m.bias.copy_(0.1 * randn(m.bias.shape))
            elif isinstance(m, GRN):
                for n in m.names:
                    getattr(m, n).copy_(0.5 * randn(getattr(m, n).shape))
            if isinstance(m, CNBlock):
                m.layer_scale.copy_(layer_scale(m.layer_scale.shape))
            elif isinstance(m, Block) and m.version == 1:
                m.gamma.copy_(layer_scale(m.gamma.shape))


def branch_ratios(model, x):
    """||block(x) - x|| / ||x|| for every block, in order."""
    ratios = []

    def hook(_mod, inputs, output):
        inp = inputs[0]
        ratios.append(float((output - inp).norm() / inp.norm()))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (CNBlock, Block))]
    try:
        forward_all(model, x)
    finally:
        for h in handles:
            h.remove()
    return ratios


# --------------------------------------------------------------------------
# Key layouts.  Forward direction: built structurally from (i, j) loops.
# --------------------------------------------------------------------------

LAYOUTS = ("official", "timm", "torchvision", "hf")


def key_table(version, depths, layout):
    """List of (official_key, layout_key, role) for every parameter."""
    hf = ("convnext." if version == 1 else "convnextv2.")
    rows = []

    def mod(names, role="plain"):
        o = names["official"]
        lk = names[layout]
        for p in ("weight", "bias"):
            rows.append((o + "." + p, lk + "." + p, role + ("_w" if p == "weight" else "_b")))

    mod(dict(official="downsample_layers.0.0", timm="stem.0", torchvision="features.0.0",
             hf=hf + "embeddings.patch_embeddings"))
    mod(dict(official="downsample_layers.0.1", timm="stem.1", torchvision="features.0.1",
             hf=hf + "embeddings.layernorm"))
    for i in range(4):
        if i > 0:
            for k in (0, 1):
                mod(dict(official=f"downsample_layers.{i}.{k}", timm=f"stages.{i}.downsample.{k}",
                         torchvision=f"features.{2 * i}.{k}",
                         hf=hf + f"encoder.stages.{i}.downsampling_layer.{k}"))
        for j in range(depths[i]):
            pre = dict(official=f"stages.{i}.{j}", timm=f"stages.{i}.blocks.{j}",
                       torchvision=f"features.{2 * i + 1}.{j}", hf=hf + f"encoder.stages.{i}.layers.{j}")
            sub = {
                "dwconv": dict(official=".dwconv", timm=".conv_dw", torchvision=".block.0", hf=".dwconv"),
                "norm": dict(official=".norm", timm=".norm", torchvision=".block.2", hf=".layernorm"),
                "fc1": dict(official=".pwconv1", timm=".mlp.fc1", torchvision=".block.3", hf=".pwconv1"),
                "fc2": dict(official=".pwconv2", timm=".mlp.fc2", torchvision=".block.5", hf=".pwconv2"),
            }
            for part in ("dwconv", "norm", "fc1"):
                mod({L: pre[L] + sub[part][L] for L in LAYOUTS}, "fc" if part == "fc1" else "plain")
            if version == 2:
                g = dict(official=".grn.gamma", timm=".mlp.grn.weight", hf=".grn.weight")
                b = dict(official=".grn.beta", timm=".mlp.grn.bias", hf=".grn.bias")
                if layout == "torchvision":
                    raise ValueError("torchvision has no ConvNeXt V2")
                rows.append((pre["official"] + g["official"], pre[layout] + g[layout], "grn"))
                rows.append((pre["official"] + b["official"], pre[layout] + b[layout], "grn"))
            mod({L: pre[L] + sub["fc2"][L] for L in LAYOUTS}, "fc")
            if version == 1:
                ls = dict(official=".gamma", timm=".gamma", torchvision=".layer_scale",
                          hf=".layer_scale_parameter")
                rows.append((pre["official"] + ls["official"], pre[layout] + ls[layout], "ls"))
    mod(dict(official="norm", timm="head.norm", torchvision="classifier.0", hf=hf + "layernorm"))
    mod(dict(official="head", timm="head.fc", torchvision="classifier.2", hf="classifier"))
    return rows


def official_to_layout(sd, version, depths, layout, conv_mlp=False):
    out = OrderedDict()
    rows = key_table(version, depths, layout)
    assert set(r[0] for r in rows) == set(sd.keys()), "key table does not cover the state dict"
    for okey, lkey, role in rows:
        t = sd[okey].detach().clone().contiguous()
        if role == "ls":
            t = t.reshape(-1, 1, 1) if layout == "torchvision" else t.reshape(-1)
        elif role == "grn":
            t = t.reshape(-1) if layout == "timm" else t.reshape(1, 1, 1, -1)
        elif role == "fc_w" and layout == "timm" and conv_mlp:
            t = t.reshape(t.shape[0], t.shape[1], 1, 1)
        out[lkey] = t.contiguous()
    return out


def tv_to_official(sd_tv, depths):
    """torchvision V1 state dict -> official V1 (used to get the V1 canonical form)."""
    rows = key_table(1, depths, "torchvision")
    out = OrderedDict()
    for okey, lkey, role in rows:
        t = sd_tv[lkey].detach().clone()
        out[okey] = t.reshape(-1) if role == "ls" else t
    assert len(out) == len(sd_tv)
    return out


# --------------------------------------------------------------------------
# Back direction, used only for verification: regex rules written separately
# from key_table, so a mistake in one is caught by the other.
# --------------------------------------------------------------------------

def _apply_rules(sd, rules):
    out = OrderedDict()
    for k, v in sd.items():
        nk = k
        for pat, rep in rules:
            nk = re.sub(pat, rep, nk)
        assert nk not in out, f"duplicate key after renaming: {nk}"
        out[nk] = v
    return out


def timm_to_official(sd):
    rules = [
        (r"^stem\.0\.", "downsample_layers.0.0."),
        (r"^stem\.1\.", "downsample_layers.0.1."),
        (r"^stages\.(\d)\.downsample\.(\d)\.", r"downsample_layers.\1.\2."),
        (r"^stages\.(\d)\.blocks\.(\d+)\.", r"stages.\1.\2."),
        (r"\.conv_dw\.", ".dwconv."),
        (r"\.mlp\.fc1\.", ".pwconv1."),
        (r"\.mlp\.fc2\.", ".pwconv2."),
        (r"\.mlp\.grn\.weight$", ".grn.gamma"),
        (r"\.mlp\.grn\.bias$", ".grn.beta"),
        (r"^head\.norm\.", "norm."),
        (r"^head\.fc\.", "head."),
    ]
    out = _apply_rules(sd, rules)
    for k in list(out):
        if k.endswith((".grn.gamma", ".grn.beta")):
            out[k] = out[k].reshape(1, 1, 1, -1)
        elif re.search(r"\.pwconv[12]\.weight$", k) and out[k].dim() == 4:
            out[k] = out[k].reshape(out[k].shape[0], out[k].shape[1])
    return out


def hf_to_official(sd):
    rules = [
        (r"^convnext(v2)?\.embeddings\.patch_embeddings\.", "downsample_layers.0.0."),
        (r"^convnext(v2)?\.embeddings\.layernorm\.", "downsample_layers.0.1."),
        (r"^convnext(v2)?\.encoder\.stages\.(\d)\.downsampling_layer\.(\d)\.", r"downsample_layers.\2.\3."),
        (r"^convnext(v2)?\.encoder\.stages\.(\d)\.layers\.(\d+)\.", r"stages.\2.\3."),
        (r"^convnext(v2)?\.layernorm\.", "norm."),
        (r"\.layernorm\.", ".norm."),
        (r"\.layer_scale_parameter$", ".gamma"),
        (r"\.grn\.weight$", ".grn.gamma"),
        (r"\.grn\.bias$", ".grn.beta"),
        (r"^classifier\.", "head."),
    ]
    return _apply_rules(sd, rules)


def torchvision_to_official(sd):
    rules = [
        (r"^features\.0\.0\.", "downsample_layers.0.0."),
        (r"^features\.0\.1\.", "downsample_layers.0.1."),
        (r"^features\.([246])\.(\d)\.", lambda m: f"downsample_layers.{int(m.group(1)) // 2}.{m.group(2)}."),
        (r"^features\.([1357])\.(\d+)\.", lambda m: f"stages.{(int(m.group(1)) - 1) // 2}.{m.group(2)}."),
        (r"\.block\.0\.", ".dwconv."),
        (r"\.block\.2\.", ".norm."),
        (r"\.block\.3\.", ".pwconv1."),
        (r"\.block\.5\.", ".pwconv2."),
        (r"\.layer_scale$", ".gamma"),
        (r"^classifier\.0\.", "norm."),
        (r"^classifier\.2\.", "head."),
    ]
    out = _apply_rules(sd, rules)
    for k in list(out):
        if k.endswith(".gamma"):
            out[k] = out[k].reshape(-1)
    return out


TO_OFFICIAL = {"official": lambda sd: OrderedDict(sd), "timm": timm_to_official,
               "hf": hf_to_official, "torchvision": torchvision_to_official}


# --------------------------------------------------------------------------
# File formats
# --------------------------------------------------------------------------

def save_safetensors(path, sd, metadata=None):
    """The state dict in sorted key order, __metadata__ first (default {'format': 'pt'}, as torch's
    safetensors.torch.save_file writes it)."""
    safetensors_io.write_safetensors(path, OrderedDict((k, sd[k]) for k in sorted(sd)), dict(metadata or {"format": "pt"}))


load_safetensors = safetensors_io.read_safetensors


def hf_config(version, depths, dims, num_classes, eps):
    cfg = OrderedDict()
    cfg["architectures"] = ["ConvNextForImageClassification" if version == 1
                            else "ConvNextV2ForImageClassification"]
    cfg["depths"] = list(depths)
    cfg["drop_path_rate"] = 0.0
    cfg["hidden_act"] = "gelu"
    cfg["hidden_sizes"] = list(dims)
    cfg["id2label"] = OrderedDict((str(i), f"LABEL_{i}") for i in range(num_classes))
    cfg["image_size"] = 224
    cfg["initializer_range"] = 0.02
    cfg["label2id"] = OrderedDict((f"LABEL_{i}", i) for i in range(num_classes))
    cfg["layer_norm_eps"] = eps
    if version == 1:
        cfg["layer_scale_init_value"] = 1e-06
    cfg["model_type"] = "convnext" if version == 1 else "convnextv2"
    cfg["num_channels"] = 3
    cfg["num_stages"] = 4
    cfg["out_features"] = ["stage4"]
    cfg["out_indices"] = [4]
    cfg["patch_size"] = 4
    cfg["stage_names"] = ["stem", "stage1", "stage2", "stage3", "stage4"]
    cfg["torch_dtype"] = "float32"
    cfg["transformers_version"] = "4.40.0"
    return cfg


def fb_args_namespace(model_name):
    # FB main.py stores its argparse.Namespace under 'args'; a reader must
    # cope with that pickled class (it should ignore it).
    return argparse.Namespace(model=model_name, drop_path=0.1, input_size=224,
                              layer_scale_init_value=1e-6, lr=4e-3, weight_decay=0.05,
                              model_ema=True, data_set="IMNET", output_dir="./checkpoints")


# --------------------------------------------------------------------------
# Families (one reference model each) and cases (one layout/file each)
# --------------------------------------------------------------------------

FAMILIES = {
    # small, committed
    "small_v1": dict(version=1, depths=[1, 1, 2, 1], dims=[8, 12, 16, 24], num_classes=10,
                     input_shape=[2, 3, 32, 64], seed=101),
    "small_v2": dict(version=2, depths=[1, 1, 2, 1], dims=[8, 12, 16, 24], num_classes=10,
                     input_shape=[2, 3, 32, 64], seed=202),
    "small_v1_custom": dict(version=1, depths=[2, 1, 3, 1], dims=[10, 14, 22, 30], num_classes=7,
                            input_shape=[2, 3, 72, 36], seed=303),
    # full size, not committed
    "full_v1_tiny": dict(version=1, depths=[3, 3, 9, 3], dims=[96, 192, 384, 768], num_classes=1000,
                         input_shape=[2, 3, 224, 224], seed=1001, tv_builder="convnext_tiny"),
    "full_v2_atto": dict(version=2, depths=[2, 2, 6, 2], dims=[40, 80, 160, 320], num_classes=1000,
                         input_shape=[2, 3, 224, 224], seed=1002),
    "full_v2_tiny": dict(version=2, depths=[3, 3, 9, 3], dims=[96, 192, 384, 768], num_classes=1000,
                         input_shape=[2, 3, 224, 224], seed=1003),
    "full_v1_custom": dict(version=1, depths=[2, 2, 4, 2], dims=[40, 72, 136, 264], num_classes=37,
                           input_shape=[2, 3, 224, 224], seed=1004),
}

# wrapper: 'fb' = {'model': sd, 'epoch': 3}, 'fb_args' = fb + argparse 'args', 'plain' = sd.
# The small layout-variant cases use a 32x32 input (stage3 is 1x1 there) to keep the committed
# folder small; v1_official / v2_official use a non-square 32x64 input (stage3 1x2) and
# v1_custom a non-square 72x36 input that is not a multiple of 32 (floor at each downsample).
S = [2, 3, 32, 32]
SMALL_CASES = OrderedDict([
    ("v1_official", dict(family="small_v1", layout="official", file="checkpoint.pth", wrapper="fb_args")),
    ("v1_timm", dict(family="small_v1", layout="timm", file="convnext_test.pth", wrapper="plain",
                     input_shape=S)),
    ("v1_torchvision", dict(family="small_v1", layout="torchvision", file="convnext_test-tv.pth",
                            wrapper="plain", input_shape=S)),
    ("v1_hf", dict(family="small_v1", layout="hf", file="pytorch_model.bin", wrapper="plain",
                   input_shape=S)),
    ("v1_hf_safetensors", dict(family="small_v1", layout="hf", file="model.safetensors", wrapper="plain",
                               input_shape=S)),
    ("v1_timm_convmlp", dict(family="small_v1", layout="timm", file="convnext_test_convmlp.pth",
                             wrapper="plain", conv_mlp=True, input_shape=S)),
    ("v1_official_fp16", dict(family="small_v1", layout="official", file="checkpoint_fp16.pth",
                              wrapper="fb", dtype="float16", input_shape=S)),
    ("v1_custom", dict(family="small_v1_custom", layout="official", file="checkpoint-best.pth",
                       wrapper="fb")),
    ("v2_official", dict(family="small_v2", layout="official", file="convnextv2_test_1k_224_ema.pt",
                         wrapper="fb")),
    ("v2_hf", dict(family="small_v2", layout="hf", file="pytorch_model.bin", wrapper="plain",
                   input_shape=S)),
    ("v2_timm", dict(family="small_v2", layout="timm", file="convnextv2_test.pth", wrapper="plain",
                     conv_mlp=True, input_shape=S)),
])

FULL_CASES = OrderedDict([
    ("convnext_tiny_official", dict(family="full_v1_tiny", layout="official",
                                    file="convnext_tiny_1k_224_ema.pth", wrapper="fb")),
    ("convnext_tiny_timm", dict(family="full_v1_tiny", layout="timm", file="convnext_tiny.pth",
                                wrapper="plain")),
    ("convnext_tiny_torchvision", dict(family="full_v1_tiny", layout="torchvision",
                                       file="convnext_tiny-random.pth", wrapper="plain")),
    ("convnext_tiny_hf", dict(family="full_v1_tiny", layout="hf", file="model.safetensors",
                              wrapper="plain")),
    ("convnextv2_atto_official", dict(family="full_v2_atto", layout="official",
                                      file="convnextv2_atto_1k_224_ema.pt", wrapper="fb")),
    ("convnextv2_atto_hf", dict(family="full_v2_atto", layout="hf", file="pytorch_model.bin",
                                wrapper="plain")),
    ("convnextv2_tiny_official", dict(family="full_v2_tiny", layout="official",
                                      file="convnextv2_tiny_1k_224_ema.pt", wrapper="fb")),
    ("convnextv2_tiny_hf", dict(family="full_v2_tiny", layout="hf", file="model.safetensors",
                                wrapper="plain")),
    ("convnext_custom_official", dict(family="full_v1_custom", layout="official",
                                      file="checkpoint-best.pth", wrapper="fb_args")),
])


def build_family(name):
    """Reference model (randomised), its official-layout state dict and input."""
    fam = FAMILIES[name]
    gen = torch.Generator().manual_seed(fam["seed"])
    torch.manual_seed(fam["seed"])
    v, depths, dims, k = fam["version"], fam["depths"], fam["dims"], fam["num_classes"]
    if v == 1:
        if fam.get("tv_builder"):
            builder = getattr(torchvision.models, fam["tv_builder"])
            model = builder(weights=None, stochastic_depth_prob=0.0, num_classes=k)
        else:
            model = make_tv_model(depths, dims, k)
        randomize_(model, gen)
        official = tv_to_official(model.state_dict(), depths)
    else:
        model = RefConvNeXt(depths, dims, k, version=2)
        randomize_(model, gen)
        official = OrderedDict((kk, vv.detach().clone()) for kk, vv in model.state_dict().items())
    model.eval()
    return dict(fam, name=name, model=model, official=official, inputs={})


def family_input(fam, shape):
    """Deterministic input of the given shape; retry seeds until the top-1 margin is clear."""
    shape = tuple(shape)
    if shape not in fam["inputs"]:
        for attempt in range(20):
            igen = torch.Generator().manual_seed(fam["seed"] * 7919 + 31 * shape[2] + shape[3] + attempt)
            x = torch.randn(shape, generator=igen)
            if argmax_margin(forward_all(fam["model"], x)["logits"]) > 2e-2:
                break
        else:
            raise RuntimeError(f"{fam['name']}: could not find an input with a clear argmax")
        fam["inputs"][shape] = x
    return fam["inputs"][shape]


def argmax_margin(logits):
    top2 = torch.topk(logits, 2, dim=1).values
    scale = max(1.0, float(logits.abs().max()))
    return float((top2[:, 0] - top2[:, 1]).min()) / scale


def model_from_official(fam, official, final_eps):
    """A fresh reference model holding the given official-layout weights (fp32)."""
    depths, dims, k = fam["depths"], fam["dims"], fam["num_classes"]
    off32 = OrderedDict((kk, vv.float()) for kk, vv in official.items())
    if fam["version"] == 1:
        if fam.get("tv_builder"):
            model = getattr(torchvision.models, fam["tv_builder"])(
                weights=None, stochastic_depth_prob=0.0, num_classes=k)
        else:
            model = make_tv_model(depths, dims, k)
        model.load_state_dict(official_to_layout(off32, 1, depths, "torchvision"), strict=True)
    else:
        model = RefConvNeXt(depths, dims, k, version=2)
        model.load_state_dict(off32, strict=True)
    set_final_eps(model, final_eps)
    return model.eval()


def rel_err(a, b):
    a = a.detach().double()
    b = b.detach().double()
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def outputs_rel_err(o1, o2):
    errs = [rel_err(o1["logits"], o2["logits"]), rel_err(o1["prelogits"], o2["prelogits"])]
    errs += [rel_err(a, b) for a, b in zip(o1["stages"], o2["stages"])]
    return max(errs)


def reference_outputs(model, x):
    """float32 outputs + float64 sanity check + non-vacuity checks."""
    out = forward_all(model, x)
    m64 = copy.deepcopy(model).double()
    out64 = forward_all(m64, x.double())
    fp64_err = outputs_rel_err(out, out64)
    assert fp64_err < 1e-4, f"float32 vs float64 reference differ by {fp64_err:.3g}"
    if fp64_err > 1e-5:
        print(f"    note: float32 vs float64 max rel err {fp64_err:.3g} (> 1e-5)")
    ratios = branch_ratios(model, x)
    assert min(ratios) > MIN_BRANCH_RATIO, f"a block's residual branch is negligible: {ratios}"
    return out, dict(fp64_max_rel_err=fp64_err, min_branch_ratio=min(ratios),
                     branch_ratios=[round(r, 4) for r in ratios])


# --------------------------------------------------------------------------
# Self-tests run before generating anything
# --------------------------------------------------------------------------

def self_test():
    depths, dims, k = [1, 1, 2, 1], [8, 12, 16, 24], 5
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 64, 64, generator=gen)

    # (a) V2 reference with GRN gamma=beta=0 == torchvision V1 with layer scale 1
    ref2 = RefConvNeXt(depths, dims, k, version=2)
    randomize_(ref2, gen)
    with torch.no_grad():
        for m in ref2.modules():
            if isinstance(m, GRN):
                m.gamma.zero_()
                m.beta.zero_()
    sd = OrderedDict((kk, vv) for kk, vv in ref2.state_dict().items() if ".grn." not in kk)
    tv = make_tv_model(depths, dims, k, layer_scale=1.0)
    tv_sd = official_to_layout(
        OrderedDict(list(sd.items()) + [(f"stages.{i}.{j}.gamma", torch.ones(dims[i]))
                                        for i in range(4) for j in range(depths[i])]),
        1, depths, "torchvision")
    tv.load_state_dict(tv_sd, strict=True)
    err = outputs_rel_err(forward_all(ref2, x), forward_all(tv, x))
    assert err < 1e-5, f"V2 reference (GRN=0) != torchvision V1 (layer scale 1): {err:.3g}"

    # (b) V1 reference (FB semantics) == torchvision V1 with random weights, layer scale and LN
    tv1 = make_tv_model(depths, dims, k)
    randomize_(tv1, gen)
    ref1 = RefConvNeXt(depths, dims, k, version=1)
    ref1.load_state_dict(tv_to_official(tv1.state_dict(), depths), strict=True)
    err = outputs_rel_err(forward_all(ref1, x), forward_all(tv1, x))
    assert err < 1e-5, f"V1 reference != torchvision V1: {err:.3g}"

    # (c) GRN must matter in randomised V2 models (else V2 parity would be vacuous)
    ref2b = RefConvNeXt(depths, dims, k, version=2)
    randomize_(ref2b, gen)
    with_grn = forward_all(ref2b, x)["logits"]
    nogrn = copy.deepcopy(ref2b)
    with torch.no_grad():
        for m in nogrn.modules():
            if isinstance(m, GRN):
                m.gamma.zero_()
                m.beta.zero_()
    assert rel_err(forward_all(nogrn, x)["logits"], with_grn) > 0.05, "GRN has no visible effect"

    # (d) every layout maps back to official and the key table is a bijection
    for v, layouts in ((1, LAYOUTS), (2, ("official", "timm", "hf"))):
        off = tv_to_official(tv1.state_dict(), depths) if v == 1 else ref2b.state_dict()
        for layout in layouts:
            for conv_mlp in ((False, True) if layout == "timm" else (False,)):
                lsd = official_to_layout(off, v, depths, layout, conv_mlp)
                back = TO_OFFICIAL[layout](lsd)
                assert set(back) == set(off), (v, layout, set(back) ^ set(off))
                for kk in off:
                    assert back[kk].shape == off[kk].shape and torch.equal(back[kk], off[kk]), (v, layout, kk)

    # (e) safetensors writer round trip
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"convnext_selftest_{os.getpid()}.safetensors")
    try:
        lsd = official_to_layout(ref2b.state_dict(), 2, depths, "hf")
        save_safetensors(tmp, lsd)
        back = load_safetensors(tmp)
        assert list(sorted(back)) == list(sorted(lsd))
        assert all(torch.equal(back[kk], lsd[kk]) for kk in lsd)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --------------------------------------------------------------------------
# Writing and verifying one case
# --------------------------------------------------------------------------

def save_npy(path, t):
    np.save(path, np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32)))


def write_case(out_dir, case, spec, fam, cache):
    version, depths, dims, k = fam["version"], fam["depths"], fam["dims"], fam["num_classes"]
    layout = spec["layout"]
    conv_mlp = bool(spec.get("conv_mlp"))
    dtype = spec.get("dtype", "float32")
    final_eps = HF_FINAL_EPS if layout == "hf" else BLOCK_EPS
    x = family_input(fam, spec.get("input_shape", fam["input_shape"]))

    official = fam["official"]
    notes = []
    extra = {}
    if dtype == "float16":
        official = OrderedDict((kk, vv.half()) for kk, vv in official.items())
        notes.append("All tensors are stored as float16. Reference outputs were computed in float32 "
                     "from the float16-rounded weights, so a loader that upcasts float16 to float32 "
                     "must still meet the normal tolerance; fp16_rounding_effect_rel says how far "
                     "the outputs of the unrounded float32 weights are.")

    # reference outputs: shared per (family, final eps, dtype)
    ckey = (fam["name"], final_eps, dtype, tuple(x.shape))
    if ckey not in cache:
        if dtype == "float32" and final_eps == BLOCK_EPS:
            model = fam["model"]
        else:
            model = model_from_official(fam, official, final_eps)
        out, stats = reference_outputs(model, x)
        if dtype == "float16":
            base = model_from_official(fam, fam["official"], final_eps)
            stats["fp16_rounding_effect_rel"] = rel_err(forward_all(base, x)["logits"], out["logits"])
        stats["argmax_margin_rel"] = argmax_margin(out["logits"])
        cache[ckey] = (out, stats)
    out, stats = cache[ckey]
    extra.update(stats)

    lsd = official_to_layout(official, version, depths, layout, conv_mlp)
    case_dir = os.path.join(out_dir, case)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    ckpt_path = os.path.join(case_dir, spec["file"])
    wrapper = spec["wrapper"]
    if spec["file"].endswith(".safetensors"):
        save_safetensors(ckpt_path, lsd, {"format": "pt"})
        fmt = "safetensors"
        wrapper_desc = "safetensors (no wrapper), __metadata__ {'format': 'pt'}"
    else:
        if wrapper == "plain":
            obj = lsd
            wrapper_desc = "plain state dict"
        else:
            obj = {"model": lsd, "epoch": 3}
            wrapper_desc = "{'model': state_dict, 'epoch': 3}"
            if wrapper == "fb_args":
                obj["args"] = fb_args_namespace("convnext_custom")
                wrapper_desc = "{'model': state_dict, 'epoch': 3, 'args': argparse.Namespace(...)}"
        torch.save(obj, ckpt_path)  # zip format (torch >= 1.6 default)
        fmt = "torch-zip"
    files = [spec["file"]]
    if layout == "hf":
        with open(os.path.join(case_dir, "config.json"), "w") as f:
            json.dump(hf_config(version, depths, dims, k, final_eps), f, indent=2)
            f.write("\n")
        files.append("config.json")

    save_npy(os.path.join(case_dir, "input.npy"), x)
    save_npy(os.path.join(case_dir, "logits.npy"), out["logits"])
    save_npy(os.path.join(case_dir, "prelogits.npy"), out["prelogits"])
    for i, s in enumerate(out["stages"]):
        save_npy(os.path.join(case_dir, f"stage{i}.npy"), s)

    if layout == "hf":
        notes.append(f"HF final LayerNorm uses config.layer_norm_eps = {final_eps:g}; "
                     "all other LayerNorms use 1e-6.")
    if conv_mlp:
        notes.append("timm conv_mlp=True layout: mlp.fc1/mlp.fc2 weights are 1x1 convs [out,in,1,1].")
    if layout == "timm" and version == 2:
        notes.append("timm GRN weight/bias are 1-D [4C].")
    if wrapper == "fb_args":
        notes.append("The checkpoint also pickles an argparse.Namespace under 'args', as FB main.py does.")

    meta = OrderedDict()
    meta["case"] = case
    meta["generator_version"] = GENERATOR_VERSION
    meta["layout"] = layout
    meta["version"] = version
    meta["depths"] = list(depths)
    meta["dims"] = list(dims)
    meta["num_classes"] = k
    meta["checkpoint"] = spec["file"]
    meta["checkpoint_format"] = fmt
    meta["wrapper"] = wrapper_desc
    meta["weights_dtype"] = dtype
    meta["conv_mlp"] = conv_mlp
    meta["files"] = files + ["input.npy", "logits.npy", "prelogits.npy"] + [f"stage{i}.npy" for i in range(4)]
    meta["final_ln_eps"] = final_eps
    meta["block_ln_eps"] = BLOCK_EPS
    meta["input_shape"] = list(x.shape)
    meta["input_layout"] = "NCHW float32, already normalised (standard normal)"
    meta["stage_shapes"] = [list(s.shape) for s in out["stages"]]
    meta["prelogits_def"] = "LayerNorm(mean over H,W of stage3)  (official forward_features / HF pooler_output)"
    meta["tolerance"] = TOLERANCE
    meta["tolerance_rule"] = "max|ours - ref| <= tolerance * max(1, max|ref|); argmax must be identical"
    meta["reference"] = ("torchvision.models.convnext.ConvNeXt " + torchvision.__version__ if version == 1
                         else "RefConvNeXt (FB2 models/convnextv2.py semantics) in make_fixtures.py")
    meta["family"] = fam["name"]
    meta["seed"] = fam["seed"]
    meta["num_params"] = int(sum(v.numel() for v in lsd.values()))
    meta["torch_version"] = torch.__version__
    meta.update(extra)
    meta["notes"] = " ".join(notes)
    with open(os.path.join(case_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return case_dir


def verify_case(case_dir):
    """Read the case back from disk, map to official, load into an independent model, re-run."""
    with open(os.path.join(case_dir, "meta.json")) as f:
        meta = json.load(f)
    path = os.path.join(case_dir, meta["checkpoint"])
    if meta["checkpoint_format"] == "safetensors":
        sd = load_safetensors(path)
    else:
        obj = torch.load(path, map_location="cpu")
        if "model" in obj and isinstance(obj["model"], dict):
            assert obj.get("epoch") == 3
            sd = obj["model"]
        else:
            sd = obj
    dt = {"float32": torch.float32, "float16": torch.float16}[meta["weights_dtype"]]
    assert all(v.dtype == dt for v in sd.values()), "unexpected tensor dtype in file"
    sd = OrderedDict((k, v.float()) for k, v in sd.items())
    final_eps = meta["final_ln_eps"]
    if meta["layout"] == "hf":
        with open(os.path.join(case_dir, "config.json")) as f:
            cfg = json.load(f)
        final_eps = cfg["layer_norm_eps"]
        assert cfg["depths"] == meta["depths"] and cfg["hidden_sizes"] == meta["dims"]
        assert len(cfg["id2label"]) == meta["num_classes"]
    x = torch.from_numpy(np.load(os.path.join(case_dir, "input.npy")))
    ref = {"logits": torch.from_numpy(np.load(os.path.join(case_dir, "logits.npy"))),
           "prelogits": torch.from_numpy(np.load(os.path.join(case_dir, "prelogits.npy"))),
           "stages": [torch.from_numpy(np.load(os.path.join(case_dir, f"stage{i}.npy"))) for i in range(4)]}
    errs = {}
    # 1) FB/FB2-semantics reference model, via the regex back-mapping
    official = TO_OFFICIAL[meta["layout"]](sd)
    m = RefConvNeXt(meta["depths"], meta["dims"], meta["num_classes"], meta["version"], final_eps)
    m.load_state_dict(official, strict=True)
    errs["ref"] = outputs_rel_err(forward_all(m, x), ref)
    # 2) V1: also torchvision, loaded strictly from the torchvision form
    if meta["version"] == 1:
        tv = make_tv_model(meta["depths"], meta["dims"], meta["num_classes"])
        tv_sd = sd if meta["layout"] == "torchvision" else official_to_layout(
            official, 1, meta["depths"], "torchvision")
        tv.load_state_dict(tv_sd, strict=True)
        set_final_eps(tv, final_eps)
        errs["torchvision"] = outputs_rel_err(forward_all(tv, x), ref)
    # 3) shapes
    n = meta["input_shape"][0]
    assert list(ref["logits"].shape) == [n, meta["num_classes"]]
    assert list(ref["prelogits"].shape) == [n, meta["dims"][-1]]
    h, w = meta["input_shape"][2], meta["input_shape"][3]
    h, w = (h - 4) // 4 + 1, (w - 4) // 4 + 1
    for i in range(4):
        if i:
            h, w = (h - 2) // 2 + 1, (w - 2) // 2 + 1
        assert list(ref["stages"][i].shape) == [n, meta["dims"][i], h, w], (i, ref["stages"][i].shape)
    worst = max(errs.values())
    assert worst < 1e-5, f"{case_dir}: reloaded outputs differ: {errs}"
    return errs


# --------------------------------------------------------------------------

def _is_current(meta_path):
    try:
        with open(meta_path) as f:
            return json.load(f).get("generator_version") == GENERATOR_VERSION
    except (OSError, ValueError):
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="full-size cases (not committed)")
    ap.add_argument("--out", default=None, help=f"output folder (small default: {DEFAULT_SMALL_OUT})")
    ap.add_argument("--only", default=None, help="comma-separated case names")
    ap.add_argument("--skip-existing", action="store_true", help="keep cases whose meta.json exists")
    ap.add_argument("--no-verify", action="store_true", help="skip reading each case back")
    ap.add_argument("--list", action="store_true", help="list case names and exit")
    args = ap.parse_args(argv)

    cases = FULL_CASES if args.full else SMALL_CASES
    if args.list:
        for name, spec in cases.items():
            print(f"{name:28s} {spec['layout']:12s} {spec['file']}")
        return 0
    if args.out is None:
        if args.full:
            ap.error("--full needs --out DIR")
        args.out = DEFAULT_SMALL_OUT
    selected = select_cases(ap, args.only, cases)
    if args.skip_existing:
        kept = [c for c in selected if _is_current(os.path.join(args.out, c, "meta.json"))]
        for c in kept:
            print(f"skip {c} (exists)")
        selected = [c for c in selected if c not in kept]
    os.makedirs(args.out, exist_ok=True)

    t0 = time.time()
    torch.set_grad_enabled(False)
    self_test()
    print(f"self-test ok ({time.time() - t0:.1f}s)")

    families, cache = {}, {}
    for case in selected:
        spec = cases[case]
        t1 = time.time()
        if spec["family"] not in families:
            families[spec["family"]] = build_family(spec["family"])
        d = write_case(args.out, case, spec, families[spec["family"]], cache)
        msg = ""
        if not args.no_verify:
            errs = verify_case(d)
            msg = "verified " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items())
        print(f"wrote {d} ({time.time() - t1:.1f}s) {msg}")
    print(f"done: {len(selected)} case(s) in {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

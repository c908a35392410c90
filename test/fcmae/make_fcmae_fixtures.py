#!/usr/bin/python3
"""FCMAE parity fixture generator for convnext-tfjs (test/fcmae/fcmae_parity.test.ts).

A float64 PyTorch reference of the dense-masked FCMAE, written from ../shared/FCMAE.md (the sparse
MinkowskiEngine original cannot be installed here and has no CPU depthwise conv, pitfall P9):

  encoder: stem conv4x4/4 + LN (full image) -> * v1; per block: a = x*v; a = dwconv7(a)*v; LN;
           pwconv1; exact GELU; GRN over visible sites (per image, or pooled over the batch:
           G = sqrt(sum v x^2 + 1e-6), Nx = G / (mean_c G + 1e-6), y = gamma x Nx + beta + x);
           pwconv2; x = (x + a)*v;  downsample: LN; conv2x2/2; * v_{s+1}
  decoder: proj 1x1 -> x*(1-m) + mask_token*m -> dense V2 block(s) -> pred 1x1 -> [N, L, 3072]
  loss:    patchify (official order), norm-pix target (unbiased var, eps 1e-6), MSE per patch,
           mean over masked patches

Tiny model (depths 1,1,1,1, dims 8,16,24,32, decoder D 4, depth 1), 64 px input, batch 2, a fixed
mask, non-trivial random weights (GRN gamma/beta N(0, 0.5^2), LN weights 1 + 0.2 N, biases 0.1 N).
Weights are rounded to float32 first, then everything runs in float64.

Writes test/fixtures/fcmae/:
  weights.safetensors   official dense FCMAE names (encoder.downsample_layers..., proj, mask_token,
                        decoder.0..., pred), float32
  fcmae_minkowski.pth   the same weights as FB2 main_pretrain saves them: MinkowskiEngine names and
                        shapes (.kernel [K*K, in, out] / [K*K, C], .ln., .linear., biases [1, C],
                        GRN [1, C]), with 'epoch', 'args' (argparse.Namespace), 'optimizer', 'scaler'
  input.npy [2,3,64,64] float32 NCHW, mask.npy [2,4] float32 (1 = masked)
  out_{image,batch}.safetensors   latent [N,C3,2,2] (0 at masked), pred [N,L,3072] (image only), grads of
                        every parameter (official dense names), float32
  pt_only.pth           the encoder as the released pt_only files hold it (dense names, no prefix)
  pt_only_features.npy  [2, 32] its dense features: pool -> LayerNorm at init (timm convnextv2_*.fcmae)
  meta.json             losses (step 0, after 1 and 2 AdamW steps), optimizer, checks

Usage: /usr/bin/python3 test/fcmae/make_fcmae_fixtures.py [--out DIR]
"""

import argparse
import json
import math
import os
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "test", "parity"))
sys.dont_write_bytecode = True

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import make_fixtures as mf  # noqa: E402  (save_safetensors)

DEFAULT_OUT = os.path.join(REPO, "test", "fixtures", "fcmae")
DEPTHS = [1, 1, 1, 1]
DIMS = [8, 16, 24, 32]
DEC_DIM = 4
DEC_DEPTH = 1
PATCH = 32
SIZE = 64
N = 2
# 1 = masked. Image 0 keeps one patch (int(4 * 0.4) = 1, the real ratio), image 1 keeps two, so the
# two GRN modes differ and the loss averages over an uneven count; the last row and column are
# visible in some image (pitfall P11 is irrelevant to a dense port, but keeps the mask honest).
MASK = [[1, 0, 1, 1], [0, 1, 1, 0]]
SEED = 1010
ADAMW = OrderedDict([("lr", 1e-3), ("betas", [0.9, 0.95]), ("eps", 1e-8), ("weight_decay", 0.05)])
EPS = 1e-6


# --------------------------------------------------------------------------
# Weights (official dense FCMAE names, PyTorch layouts)
# --------------------------------------------------------------------------

def param_shapes():
    s = OrderedDict()
    d = DIMS
    s["encoder.downsample_layers.0.0.weight"] = (d[0], 3, 4, 4)
    s["encoder.downsample_layers.0.0.bias"] = (d[0],)
    s["encoder.downsample_layers.0.1.weight"] = (d[0],)
    s["encoder.downsample_layers.0.1.bias"] = (d[0],)
    for i in range(1, 4):
        s[f"encoder.downsample_layers.{i}.0.weight"] = (d[i - 1],)
        s[f"encoder.downsample_layers.{i}.0.bias"] = (d[i - 1],)
        s[f"encoder.downsample_layers.{i}.1.weight"] = (d[i], d[i - 1], 2, 2)
        s[f"encoder.downsample_layers.{i}.1.bias"] = (d[i],)

    def block(p, c, grn_shape):
        s[f"{p}.dwconv.weight"] = (c, 1, 7, 7)
        s[f"{p}.dwconv.bias"] = (c,)
        s[f"{p}.norm.weight"] = (c,)
        s[f"{p}.norm.bias"] = (c,)
        s[f"{p}.pwconv1.weight"] = (4 * c, c)
        s[f"{p}.pwconv1.bias"] = (4 * c,)
        s[f"{p}.grn.gamma"] = grn_shape(4 * c)
        s[f"{p}.grn.beta"] = grn_shape(4 * c)
        s[f"{p}.pwconv2.weight"] = (c, 4 * c)
        s[f"{p}.pwconv2.bias"] = (c,)

    for i in range(4):
        for j in range(DEPTHS[i]):
            block(f"encoder.stages.{i}.{j}", d[i], lambda c: (1, 1, 1, c))
    s["proj.weight"] = (DEC_DIM, d[3], 1, 1)
    s["proj.bias"] = (DEC_DIM,)
    s["mask_token"] = (1, DEC_DIM, 1, 1)
    for j in range(DEC_DEPTH):
        block(f"decoder.{j}", DEC_DIM, lambda c: (1, 1, 1, c))
    s["pred.weight"] = (PATCH * PATCH * 3, DEC_DIM, 1, 1)
    s["pred.bias"] = (PATCH * PATCH * 3,)
    return s


def random_weights(gen):
    out = OrderedDict()
    for k, shape in param_shapes().items():
        if ".grn." in k:
            t = 0.5 * torch.randn(shape, generator=gen)
        elif k == "mask_token":
            t = 0.5 * torch.randn(shape, generator=gen)
        elif len(shape) == 1 and (k.endswith(".weight")):  # LayerNorm weights
            t = 1 + 0.2 * torch.randn(shape, generator=gen)
        elif k.endswith(".bias"):
            t = 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = int(np.prod(shape[1:]))
            t = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
        out[k] = t.float().double()  # float32-representable values
    return out


# --------------------------------------------------------------------------
# Dense-masked FCMAE (float64, NCHW at the boundary)
# --------------------------------------------------------------------------

def ln_cf(x, w, b):
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    return (x - u) / torch.sqrt(s + EPS) * w[:, None, None] + b[:, None, None]


def masked_grn(x, v, gamma, beta, stats):
    """x [N,H,W,C] channels-last, v [N,H,W,1] visible; gamma/beta broadcastable to [.., C]."""
    dims = (0, 1, 2) if stats == "batch" else (1, 2)
    g = torch.sqrt((x * v).pow(2).sum(dim=dims, keepdim=True) + EPS)
    nx = g / (g.mean(dim=-1, keepdim=True) + EPS)
    return gamma * (x * nx) + beta + x


def dense_grn(x, gamma, beta):
    g = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
    nx = g / (g.mean(dim=-1, keepdim=True) + EPS)
    return gamma * (x * nx) + beta + x


def block(w, p, x, v, stats):
    """x NCHW; v NCHW [N,1,H,W] (None: dense block of the decoder)."""
    c = x.shape[1]
    a = x if v is None else x * v
    a = F.conv2d(a, w[f"{p}.dwconv.weight"], w[f"{p}.dwconv.bias"], padding=3, groups=c)
    if v is not None:
        a = a * v
    a = a.permute(0, 2, 3, 1)
    a = F.layer_norm(a, (c,), w[f"{p}.norm.weight"], w[f"{p}.norm.bias"], EPS)
    a = F.linear(a, w[f"{p}.pwconv1.weight"], w[f"{p}.pwconv1.bias"])
    a = F.gelu(a)
    gm, bt = w[f"{p}.grn.gamma"].reshape(-1), w[f"{p}.grn.beta"].reshape(-1)
    a = dense_grn(a, gm, bt) if v is None else masked_grn(a, v.permute(0, 2, 3, 1), gm, bt, stats)
    a = F.linear(a, w[f"{p}.pwconv2.weight"], w[f"{p}.pwconv2.bias"])
    a = a.permute(0, 3, 1, 2)
    out = x + a
    return out if v is None else out * v


def upsample_mask(mask, scale):
    g = int(round(math.sqrt(mask.shape[1])))
    m = mask.reshape(-1, g, g)
    return m.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)


def encoder(w, x, mask, stats):
    vis = [(1 - upsample_mask(mask, s)).unsqueeze(1) for s in (8, 4, 2, 1)]
    e = "encoder."
    y = F.conv2d(x, w[e + "downsample_layers.0.0.weight"], w[e + "downsample_layers.0.0.bias"], stride=4)
    y = ln_cf(y, w[e + "downsample_layers.0.1.weight"], w[e + "downsample_layers.0.1.bias"]) * vis[0]
    for s in range(4):
        if s > 0:
            y = ln_cf(y, w[e + f"downsample_layers.{s}.0.weight"], w[e + f"downsample_layers.{s}.0.bias"])
            y = F.conv2d(y, w[e + f"downsample_layers.{s}.1.weight"], w[e + f"downsample_layers.{s}.1.bias"], stride=2)
            y = y * vis[s]
        for j in range(DEPTHS[s]):
            y = block(w, f"{e}stages.{s}.{j}", y, vis[s], stats)
    return y


def dense_encoder_features(w, x):
    """The released pt_only path: the dense V2 encoder (no mask, dense GRN), then pool -> LayerNorm at
    its init (weight 1, bias 0, eps 1e-6), as timm's convnextv2_*.fcmae pre-logits."""
    e = "encoder."
    y = F.conv2d(x, w[e + "downsample_layers.0.0.weight"], w[e + "downsample_layers.0.0.bias"], stride=4)
    y = ln_cf(y, w[e + "downsample_layers.0.1.weight"], w[e + "downsample_layers.0.1.bias"])
    for s in range(4):
        if s > 0:
            y = ln_cf(y, w[e + f"downsample_layers.{s}.0.weight"], w[e + f"downsample_layers.{s}.0.bias"])
            y = F.conv2d(y, w[e + f"downsample_layers.{s}.1.weight"], w[e + f"downsample_layers.{s}.1.bias"], stride=2)
        for j in range(DEPTHS[s]):
            y = block(w, f"{e}stages.{s}.{j}", y, None, None)
    pooled = y.mean(dim=(2, 3))
    return F.layer_norm(pooled, (pooled.shape[1],), eps=EPS)


def decoder(w, latent, mask):
    x = F.conv2d(latent, w["proj.weight"], w["proj.bias"])
    n, c, h, ww = x.shape
    m = mask.reshape(n, 1, h, ww)
    x = x * (1 - m) + w["mask_token"] * m
    for j in range(DEC_DEPTH):
        x = block(w, f"decoder.{j}", x, None, None)
    pred = F.conv2d(x, w["pred.weight"], w["pred.bias"])
    return pred.reshape(n, pred.shape[1], -1).permute(0, 2, 1)  # [N, L, 3072]


def patchify(imgs):
    p = PATCH
    n, c, hh, ww = imgs.shape
    h, w = hh // p, ww // p
    x = imgs.reshape(n, 3, h, p, w, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, h * w, p * p * 3)


def loss_fn(imgs, pred, mask):
    t = patchify(imgs)
    mean = t.mean(dim=-1, keepdim=True)
    var = t.var(dim=-1, keepdim=True)  # unbiased, torch default
    t = (t - mean) / (var + EPS) ** 0.5
    l = ((pred - t) ** 2).mean(dim=-1)
    return (l * mask).sum() / mask.sum()


def forward(w, x, mask, stats):
    latent = encoder(w, x, mask, stats)
    pred = decoder(w, latent, mask)
    return loss_fn(x, pred, mask), pred, latent


# --------------------------------------------------------------------------
# Optimizer (FB2 main_pretrain: AdamW betas (0.9, 0.95); timm add_weight_decay groups)
# --------------------------------------------------------------------------

def is_decayed(name, shape):
    """timm 0.3.2 add_weight_decay: no decay for 1-D params and names ending in .bias."""
    return not (len(shape) == 1 or name.endswith(".bias"))


def train_steps(w0, x, mask, stats):
    params = OrderedDict((k, v.clone().requires_grad_(True)) for k, v in w0.items())
    decay = [p for k, p in params.items() if is_decayed(k, p.shape)]
    no_decay = [p for k, p in params.items() if not is_decayed(k, p.shape)]
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                             {"params": decay, "weight_decay": ADAMW["weight_decay"]}],
                            lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"], foreach=False)
    losses, grads0, pred0, latent0 = [], None, None, None
    for step in range(3):
        opt.zero_grad()
        loss, pred, latent = forward(params, x, mask, stats)
        losses.append(float(loss))
        if step == 0:
            loss.backward()
            grads0 = OrderedDict((k, p.grad.detach().clone()) for k, p in params.items())
            pred0, latent0 = pred.detach(), latent.detach()
            opt.step()
        elif step == 1:
            loss.backward()
            opt.step()
    return losses, grads0, pred0, latent0


# --------------------------------------------------------------------------
# Minkowski (FB2 sparse checkpoint) layout: the inverse of FB2 utils.remap_checkpoint_keys
# --------------------------------------------------------------------------

def to_minkowski(w):
    out = OrderedDict()
    for k, t in w.items():
        if not k.startswith("encoder.") or k.startswith("encoder.downsample_layers.0."):
            out[k] = t.float()
            continue
        parts = k.split(".")
        if k.endswith("dwconv.weight"):
            # remap: kernel [K*K, C] -> permute(1,0) -> [C,1,K,K] -> swap last two axes
            c, _, kk, _ = t.shape
            out[k[: -len("weight")] + "kernel"] = t.transpose(2, 3).reshape(c, kk * kk).permute(1, 0).contiguous().float()
        elif len(parts) == 5 and parts[1] == "downsample_layers" and parts[3] == "1" and parts[4] == "weight":
            # remap: kernel [K*K, in, out] -> permute(2,1,0) -> [out,in,K,K] -> swap last two axes
            o, i, kk, _ = t.shape
            out[k[: -len("weight")] + "kernel"] = t.transpose(2, 3).reshape(o, i, kk * kk).permute(2, 1, 0).contiguous().float()
        elif k.endswith(".bias") and (".dwconv." in k or (parts[1] == "downsample_layers" and parts[3] == "1")):
            out[k] = t.reshape(1, -1).float()
        elif ".grn." in k:
            out[k] = t.reshape(1, -1).float()
        elif (parts[1] == "downsample_layers" and parts[3] == "0") or ".norm." in k:
            out[".".join(parts[:-1] + ["ln", parts[-1]])] = t.float()
        elif ".pwconv1." in k or ".pwconv2." in k:
            out[".".join(parts[:-1] + ["linear", parts[-1]])] = t.float()
        else:
            raise KeyError(k)
    return out


def remap_checkpoint_keys(ckpt):
    """FB2 utils.remap_checkpoint_keys as ../shared/FCMAE.md sec. 6.3 describes it (to check to_minkowski)."""
    new = OrderedDict()
    for k, v in ckpt.items():
        if k.startswith("encoder"):
            k = ".".join(k.split(".")[1:])
        if k.endswith("kernel"):
            k = ".".join(k.split(".")[:-1] + ["weight"])
            if len(v.shape) == 3:
                kv, i, o = v.shape
                ks = int(math.sqrt(kv) + 1e-5)
                new[k] = v.permute(2, 1, 0).reshape(o, i, ks, ks).transpose(3, 2)
            elif len(v.shape) == 2:
                kv, c = v.shape
                ks = int(math.sqrt(kv) + 1e-5)
                new[k] = v.permute(1, 0).reshape(c, 1, ks, ks).transpose(3, 2)
            continue
        if "ln" in k or "linear" in k:
            k = k.split(".")
            k.pop(-2)
            k = ".".join(k)
        new[k] = v
    for k, v in new.items():
        if k.endswith("bias") and len(v.shape) != 1:
            new[k] = v.reshape(-1)
        elif "grn" in k:
            new[k] = v.unsqueeze(0).unsqueeze(1)
    return new


# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    w = random_weights(gen)
    x = torch.randn((N, 3, SIZE, SIZE), generator=gen).float().double()
    mask = torch.tensor(MASK, dtype=torch.float64)
    checks = OrderedDict()

    # no leak: masked patches' pixels change nothing visible (latent, pred)
    x2 = x.clone()
    m_px = upsample_mask(mask, PATCH).unsqueeze(1).expand_as(x2) > 0
    x2[m_px] = 100 * torch.randn(int(m_px.sum()), generator=gen, dtype=torch.float64)
    with torch.no_grad():
        _, p1, l1 = forward(w, x, mask, "image")
        _, p2, l2 = forward(w, x2, mask, "image")
        checks["no_leak_latent_max_diff"] = float((l1 - l2).abs().max())
        checks["no_leak_pred_max_diff"] = float((p1 - p2).abs().max())
        assert checks["no_leak_latent_max_diff"] < 1e-12 and checks["no_leak_pred_max_diff"] < 1e-12, checks
        # at N = 1 the two GRN modes coincide
        a = forward(w, x[:1], mask[:1], "image")[0]
        b = forward(w, x[:1], mask[:1], "batch")[0]
        checks["n1_modes_loss_diff"] = abs(float(a - b))
        assert checks["n1_modes_loss_diff"] < 1e-12

    # Minkowski layout round trip through the official remap
    mink = to_minkowski(w)
    back = remap_checkpoint_keys(mink)
    dense_enc = OrderedDict((k[len("encoder."):], v) for k, v in w.items() if k.startswith("encoder."))
    for k, v in dense_enc.items():
        assert k in back, k
        assert torch.equal(back[k].double().reshape(v.shape), v), k
    dw = "stages.0.0.dwconv.weight"
    checks["swap_matters"] = bool(not torch.equal(dense_enc[dw], dense_enc[dw].transpose(2, 3)))

    meta = OrderedDict(
        generator="test/fcmae/make_fcmae_fixtures.py", torch=torch.__version__,
        config=OrderedDict(depths=DEPTHS, dims=DIMS, decoder_dim=DEC_DIM, decoder_depth=DEC_DEPTH, patch=PATCH,
                           input=[N, 3, SIZE, SIZE], mask=MASK),
        optimizer=OrderedDict(ADAMW, rule="no decay: 1-D params and names ending in .bias (timm add_weight_decay)"),
        losses=OrderedDict(), checks=checks)
    for stats in ("image", "batch"):
        losses, grads, pred, latent = train_steps(w, x, mask, stats)
        meta["losses"][stats] = losses
        out = OrderedDict([("latent", latent.float())])
        if stats == "image":  # the decoder output once (the largest tensor); losses and grads in both modes
            out["pred"] = pred.float()
        for k, g in grads.items():
            out["grad." + k] = g.float()
        mf.save_safetensors(os.path.join(args.out, f"out_{stats}.safetensors"), out)
        print(f"{stats}: loss {losses[0]:.6f} -> {losses[1]:.6f} -> {losses[2]:.6f}")
    mf.save_safetensors(os.path.join(args.out, "weights.safetensors"), OrderedDict((k, v.float()) for k, v in w.items()))
    np.save(os.path.join(args.out, "input.npy"), x.float().numpy())
    np.save(os.path.join(args.out, "mask.npy"), mask.float().numpy())
    ns = argparse.Namespace(model="convnextv2_custom", input_size=SIZE, mask_ratio=0.6, norm_pix_loss=True,
                            decoder_depth=DEC_DEPTH, decoder_embed_dim=DEC_DIM, blr=1.5e-4, epochs=800,
                            output_dir="", resume="", data_path=None, weight_decay=0.05)
    torch.save({"model": mink, "epoch": 0, "args": ns,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0, "weight_decay": 0.05, "params": [0]}]},
                "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                           "_growth_tracker": 0}},
               os.path.join(args.out, "fcmae_minkowski.pth"))
    # pt_only layout (the released convnextv2_*_1k_224_fcmae.pt): {'model': dense encoder names, no
    # 'encoder.' prefix, no decoder, no final norm, no head}; GRN kept [1, 1, 1, C] (dense GRN shape).
    pt_only = OrderedDict((k[len("encoder."):], v.float()) for k, v in w.items() if k.startswith("encoder."))
    torch.save({"model": pt_only}, os.path.join(args.out, "pt_only.pth"))
    with torch.no_grad():
        feats = dense_encoder_features(w, x)
    np.save(os.path.join(args.out, "pt_only_features.npy"), feats.float().numpy())
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"checks {dict(checks)}; wrote {args.out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

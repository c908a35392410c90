#!/usr/bin/python3
"""PyTorch training throughput of the same ConvNeXt on the same images, for comparison.

Trains torchvision's ConvNeXt with convnext_atto's configuration (dims 40/80/160/320, depths
2/2/6/2, layer scale 1e-6, stochastic depth as given, num_classes = number of class folders) with
AdamW (weight decay 0.05) and label-smoothed cross-entropy, on the train folder through the
torchvision pipeline that convnext-tfjs's trainer mirrors:
    RandomResizedCrop(S, bicubic) -> RandomHorizontalFlip -> TrivialAugmentWide -> ToTensor -> Normalize
at the same batch size, for a fixed number of optimizer steps, with torch.set_num_threads(T) for
each T given. Two numbers per thread count:
  * train_images_per_s: the whole training loop, including JPEG decoding and augmentation in the
    main process (DataLoader num_workers=0), as convnext-tfjs's loader does in its one thread;
  * compute_images_per_s: forward + backward + AdamW step on one pre-built batch (no data loading).
A few warm-up steps are run and not timed. Prints one JSON object on stdout.

Usage: /usr/bin/python3 torch_throughput.py <train dir> [--image-size 64] [--batch-size 32]
       [--steps 30] [--threads 1 2] [--drop-path 0.1] [--lr 2e-3]
"""
import argparse
import json
import platform
import sys
import time
from functools import partial

import torch
import torchvision
from torchvision import datasets, transforms
from torchvision.models.convnext import CNBlockConfig, ConvNeXt


def atto(num_classes: int, drop_path: float) -> ConvNeXt:
    dims, depths = [40, 80, 160, 320], [2, 2, 6, 2]
    setting = [CNBlockConfig(d, dims[i + 1] if i < 3 else None, n) for i, (d, n) in enumerate(zip(dims, depths))]
    return ConvNeXt(setting, stochastic_depth_prob=drop_path, layer_scale=1e-6, num_classes=num_classes)


def param_groups(model: torch.nn.Module, wd: float):
    # As convnext-tfjs (and timm): no weight decay on norms, biases, layer scale (1-D parameters).
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{'params': decay, 'weight_decay': wd}, {'params': no_decay, 'weight_decay': 0.0}]


def run(a, threads: int, dataset) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(a.seed)
    model = atto(len(dataset.classes), a.drop_path)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=a.lr)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=a.smoothing)
    g = torch.Generator()
    g.manual_seed(a.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=a.batch_size, shuffle=True, drop_last=True, num_workers=0, generator=g)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def batches():
        while True:
            for b in loader:
                yield b

    it = batches()
    # Warm-up (allocator, first-call overheads), not timed.
    for _ in range(a.warmup):
        step(*next(it))
    # Full loop: data loading + augmentation + step.
    t = time.perf_counter()
    n = 0
    for _ in range(a.steps):
        x, y = next(it)
        step(x, y)
        n += x.shape[0]
    train_s = time.perf_counter() - t
    # Data loading alone, for the breakdown.
    t = time.perf_counter()
    m = 0
    for _ in range(a.steps):
        x, _ = next(it)
        m += x.shape[0]
    load_s = time.perf_counter() - t
    # Compute only, one pre-built batch.
    x, y = next(it)
    t = time.perf_counter()
    for _ in range(a.steps):
        step(x, y)
    compute_s = time.perf_counter() - t
    return {
        'threads': threads,
        'steps': a.steps,
        'train_images_per_s': n / train_s,
        'compute_images_per_s': a.steps * x.shape[0] / compute_s,
        'loading_images_per_s': m / load_s,
        'train_seconds': train_s,
        'params': sum(p.numel() for p in model.parameters()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('train_dir')
    ap.add_argument('--image-size', type=int, default=64)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--drop-path', type=float, default=0.1)
    ap.add_argument('--smoothing', type=float, default=0.1)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()

    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.image_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.TrivialAugmentWide(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(a.train_dir, transform=tf)  # PIL loader: .convert('RGB')
    results = [run(a, t, dataset) for t in a.threads]
    for r in results:
        print(f"torch {r['threads']} thread(s): {r['train_images_per_s']:.1f} img/s training incl. data loading, "
              f"{r['compute_images_per_s']:.1f} img/s compute only, loading alone {r['loading_images_per_s']:.1f} img/s", file=sys.stderr)
    print(json.dumps({
        'torch': torch.__version__, 'torchvision': torchvision.__version__, 'python': platform.python_version(),
        'mkldnn': torch.backends.mkldnn.is_available(), 'arch': 'convnext_atto (torchvision ConvNeXt)',
        'image_size': a.image_size, 'batch_size': a.batch_size, 'images': len(dataset), 'classes': dataset.classes,
        'results': results,
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
"""Check the `convnext` CLI against parity fixture case(s).

For each case directory (made by make_fixtures.py) this runs

  npx convnext forward --model CASE/<checkpoint> --input CASE/input.npy --output OUT/logits.npy
  npx convnext forward --model CASE/<checkpoint> --input CASE/input.npy --output OUT/features.npy --features

loads the results with numpy and compares them with logits.npy / prelogits.npy:
max abs error, relative error (max abs error / max(1, max|ref|)) and, for the
logits, whether the argmax of every row matches.  A case passes when the
relative error is <= the tolerance (meta.json "tolerance", default 1e-4) and
all argmaxes match.  Exit status 1 if any case fails.

Needs only numpy (any python3 with numpy; torch is not needed).

Usage:
  test/parity/compare_cli.py test/fixtures/parity/v1_official
  test/parity/compare_cli.py test/fixtures/parity          # every case below it
  test/parity/compare_cli.py --cli "node bin/convnext.js" --no-features CASE...
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np


def find_cases(paths):
    cases = []
    for p in paths:
        if os.path.isfile(os.path.join(p, "meta.json")):
            cases.append(p)
            continue
        subs = sorted(os.path.join(p, d) for d in os.listdir(p)
                      if os.path.isfile(os.path.join(p, d, "meta.json")))
        if not subs:
            raise SystemExit(f"{p}: no meta.json here or in its sub-folders")
        cases.extend(subs)
    return cases


def run_cli(cli, model, inp, out, features):
    cmd = cli + ["forward", "--model", model, "--input", inp, "--output", out]
    if features:
        cmd.append("--features")
    print("  $ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    res = subprocess.run(cmd)
    if res.returncode != 0:
        return None, f"CLI exited with status {res.returncode}"
    if not os.path.isfile(out):
        return None, f"CLI did not write {out}"
    return np.load(out), None


def compare(name, got, ref, tol, check_argmax):
    if got.shape != ref.shape:
        print(f"  {name}: FAIL shape {list(got.shape)} != expected {list(ref.shape)}")
        return False
    got64, ref64 = got.astype(np.float64), ref.astype(np.float64)
    if not np.all(np.isfinite(got64)):
        print(f"  {name}: FAIL non-finite values in output")
        return False
    max_abs = float(np.max(np.abs(got64 - ref64)))
    scale = max(1.0, float(np.max(np.abs(ref64))))
    rel = max_abs / scale
    ok = rel <= tol
    line = f"  {name}: max abs err {max_abs:.3e}, rel err {rel:.3e} (tol {tol:g})"
    if check_argmax:
        am_got, am_ref = got64.argmax(axis=1), ref64.argmax(axis=1)
        same = bool(np.array_equal(am_got, am_ref))
        ok = ok and same
        line += f", argmax {'matches' if same else 'DIFFERS'} {am_got.tolist()} vs {am_ref.tolist()}"
    print(line + ("  ok" if ok else "  FAIL"))
    return ok


def check_case(case, cli, tol_override, features, out_dir):
    with open(os.path.join(case, "meta.json")) as f:
        meta = json.load(f)
    tol = tol_override if tol_override is not None else float(meta.get("tolerance", 1e-4))
    print(f"== {meta.get('case', os.path.basename(case))} ({meta.get('layout')}, V{meta.get('version')}, "
          f"{meta.get('checkpoint')})")
    model = os.path.join(case, meta["checkpoint"])
    inp = os.path.join(case, "input.npy")
    ok = True
    # (reference, CLI output file, --features, argmax check): logits always, pre-logits with features.
    outputs = [("logits", "out.npy", False, True)] + ([("prelogits", "out_features.npy", True, False)] if features else [])
    for name, out_file, with_features, check_argmax in outputs:
        got, err = run_cli(cli, model, inp, os.path.join(out_dir, out_file), features=with_features)
        if err:
            print(f"  {name}: FAIL {err}")
            ok = False
        else:
            ok &= compare(name, got, np.load(os.path.join(case, f"{name}.npy")), tol, check_argmax)
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", help="case folder(s), or folder(s) holding case folders")
    ap.add_argument("--cli", default="npx convnext", help='command that runs the CLI (default "npx convnext")')
    ap.add_argument("--tol", type=float, default=None, help="relative tolerance (default: meta.json, else 1e-4)")
    ap.add_argument("--no-features", action="store_true", help="skip the --features (prelogits) check")
    ap.add_argument("--out-dir", default=None, help="where the CLI writes its .npy files (default: a temp dir)")
    args = ap.parse_args(argv)

    cli = shlex.split(args.cli)
    cases = find_cases(args.cases)
    failed = []
    with tempfile.TemporaryDirectory(prefix="convnext-parity-") as tmp:
        out_dir = args.out_dir or tmp
        os.makedirs(out_dir, exist_ok=True)
        for case in cases:
            if not check_case(case, cli, args.tol, not args.no_features, out_dir):
                failed.append(case)
    print(f"\n{len(cases) - len(failed)}/{len(cases)} case(s) passed")
    for c in failed:
        print(f"  FAILED: {c}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

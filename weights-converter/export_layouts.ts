/**
 * The inverse of layouts.ts: the model's canonical weights (timm key names, TF.js tensor layouts)
 * -> one PyTorch layout's state dict (its key names, PyTorch tensor layouts).
 *
 * Key names are not written a second time: each layout's rename rules (layouts.ts RULES, the
 * forward direction the converter uses) are expanded into the source keys they accept, and each
 * canonical name gets the source key that the same rule maps onto it. So export -> convert is the
 * identity by construction, and a rule added for reading is also used for writing. Where several
 * source keys map to one name (HF's optional 'convnext.' / 'convnextv2.' prefix) the one the
 * layout's own model class uses is chosen.
 *
 * Tensor layouts per layout (what toTfjsLayout accepts, made specific; CONVNEXT_FACTS.md s. 5):
 *   stem / downsample conv  [k, k, I, O] -> [O, I, k, k]          transpose [3, 2, 0, 1]
 *   depthwise conv          [k, k, C, 1] -> [C, 1, k, k]          transpose [2, 3, 0, 1]
 *   fc1, fc2, head          [in, out]    -> [out, in]             timm conv_mlp fc1/fc2: [out, in, 1, 1]
 *   layer scale             [C]          -> [C]                   torchvision: [C, 1, 1]
 *   GRN weight / bias       [C]          -> [1, 1, 1, C]          timm: [C]
 */
import { transposeArray } from '../src/util/ndarray';
import { CheckpointError } from './errors';
import { ConvertedTensor, Layout, RULES } from './layouts';

type Rule = (typeof RULES)[Layout][number];

// ---------------------------------------------------------------------------------------------
// Expanding a rename rule's pattern into the strings it matches. The patterns are anchored and use
// a small regex subset: literals, escapes (\. \d), classes ([1-3], [246]), groups ((...), (?:...)),
// alternation and the quantifiers ? and + (only \d+, expanded to the block indices in use).
// ---------------------------------------------------------------------------------------------

type Node = { kind: 'set'; values: string[] } | { kind: 'alt'; options: Node[][] } | { kind: 'opt'; node: Node } | { kind: 'digits' };

function parsePattern(src: string): Node[] {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`export: cannot expand rename pattern /${src}/ at ${i}: ${why}`);
  };
  const parseAlt = (): Node[][] => {
    const options: Node[][] = [[]];
    while (i < src.length && src[i] !== ')') {
      const c = src[i];
      if (c === '|') {
        i++;
        options.push([]);
        continue;
      }
      let node: Node;
      if (c === '^' || c === '$') {
        i++;
        continue;
      } else if (c === '(') {
        i++;
        if (src.startsWith('?:', i)) i += 2;
        else if (src[i] === '?') fail('lookarounds are not supported');
        const inner = parseAlt();
        if (src[i] !== ')') fail('unclosed group');
        i++;
        node = { kind: 'alt', options: inner };
      } else if (c === '[') {
        const end = src.indexOf(']', i);
        if (end < 0) fail('unclosed class');
        const body = src.slice(i + 1, end);
        const values: string[] = [];
        for (let k = 0; k < body.length; k++) {
          if (body[k + 1] === '-' && k + 2 < body.length) {
            for (let ch = body.charCodeAt(k); ch <= body.charCodeAt(k + 2); ch++) values.push(String.fromCharCode(ch));
            k += 2;
          } else values.push(body[k]);
        }
        i = end + 1;
        node = { kind: 'set', values };
      } else if (c === '\\') {
        const e = src[i + 1];
        i += 2;
        if (e === 'd') node = { kind: 'set', values: '0123456789'.split('') };
        else if (/[.\\()[\]?+*|^$]/.test(e)) node = { kind: 'set', values: [e] };
        else return fail(`escape \\${e} is not supported`);
      } else if ('*{.'.includes(c)) {
        return fail(`'${c}' is not supported`);
      } else {
        i++;
        node = { kind: 'set', values: [c] };
      }
      if (src[i] === '?') {
        i++;
        node = { kind: 'opt', node };
      } else if (src[i] === '+') {
        i++;
        if (node.kind !== 'set' || node.values.join('') !== '0123456789') fail("'+' is supported on \\d only");
        node = { kind: 'digits' };
      }
      options[options.length - 1].push(node);
    }
    return options;
  };
  const top = parseAlt();
  if (i !== src.length) fail('unbalanced )');
  return [{ kind: 'alt', options: top }];
}

function expandNodes(nodes: Node[], maxIndex: number): string[] {
  let acc = [''];
  for (const n of nodes) {
    const opts = expandNode(n, maxIndex);
    acc = acc.flatMap((a) => opts.map((o) => a + o));
  }
  return acc;
}

function expandNode(n: Node, maxIndex: number): string[] {
  switch (n.kind) {
    case 'set':
      return n.values;
    case 'digits':
      return Array.from({ length: maxIndex + 1 }, (_, k) => String(k));
    case 'opt':
      return ['', ...expandNode(n.node, maxIndex)];
    case 'alt':
      return n.options.flatMap((o) => expandNodes(o, maxIndex));
  }
}

/** Every string the anchored pattern matches, with `\d+` taking the values 0..maxIndex. */
export function expandPattern(re: RegExp, maxIndex: number): string[] {
  return expandNodes(parsePattern(re.source), maxIndex).filter((s) => re.test(s));
}

function applyRule(rule: Rule, key: string): string {
  const [re, to] = rule;
  return typeof to === 'string' ? key.replace(re, to) : to(key.match(re)!);
}

/** The prefix HF's own classes give each version's backbone keys. */
function preferred(layout: Layout, version: 1 | 2, candidates: string[]): string[] {
  if (layout !== 'hf') return candidates;
  const prefix = version === 2 ? 'convnextv2.' : 'convnext.';
  const withPrefix = candidates.filter((k) => k.startsWith(prefix));
  return withPrefix.length ? withPrefix : candidates.filter((k) => !/^convnext(v2)?\./.test(k));
}

/**
 * Canonical name -> the layout's key, for every name given, derived from layouts.ts's rules.
 * A name the layout has no key for is an error naming it (e.g. GRN in torchvision, which is V1 only).
 */
export function exportKeyMap(layout: Layout, names: readonly string[], version: 1 | 2, file = '<export>'): Map<string, string> {
  const wanted = new Set(names);
  let maxIndex = 9;
  for (const n of names) {
    for (const m of n.matchAll(/\.(\d+)\./g)) maxIndex = Math.max(maxIndex, +m[1]);
  }
  const rules = RULES[layout];
  const found = new Map<string, string[]>();
  for (const rule of rules) {
    for (const key of expandPattern(rule[0], maxIndex)) {
      if (rules.find(([re]) => re.test(key)) !== rule) continue; // an earlier rule wins for this key
      const name = applyRule(rule, key);
      if (!wanted.has(name)) continue;
      const list = found.get(name) ?? [];
      list.push(key);
      found.set(name, list);
    }
  }
  const out = new Map<string, string>();
  const missing: string[] = [];
  for (const n of names) {
    const c = preferred(layout, version, found.get(n) ?? []);
    if (c.length === 0) missing.push(n);
    else if (c.length > 1) throw new CheckpointError(file, `the ${layout} layout has several keys for ${n}: ${c.join(', ')}`);
    else out.set(n, c[0]);
  }
  if (missing.length) {
    const why = layout === 'torchvision' && missing.some((m) => m.includes('.grn.')) ? " (torchvision's ConvNeXt is V1 only: it has no GRN)" : '';
    throw new CheckpointError(
      file,
      `the ${layout} layout has no key for ${missing.length} weight(s)${why}: ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''}`,
    );
  }
  return out;
}

/** Options of toTorchLayout. */
export interface TorchLayoutOptions {
  /** timm conv_mlp models (atto..nano): MLP weights as 1x1 convs [out, in, 1, 1]. */
  convMlp?: boolean;
}

/** One canonical tensor (TF.js layout) -> the layout's PyTorch tensor. */
export function toTorchLayout(layout: Layout, name: string, t: ConvertedTensor, opts: TorchLayoutOptions = {}): ConvertedTensor {
  const s = t.shape;
  if (/(^stem\.conv|downsample\.conv)\.weight$/.test(name)) return transposeArray(t.data, s, [3, 2, 0, 1]);
  if (/conv_dw\.weight$/.test(name)) return transposeArray(t.data, s, [2, 3, 0, 1]);
  if (/(mlp\.fc[12]|head\.fc)\.weight$/.test(name)) {
    const w = transposeArray(t.data, s, [1, 0]);
    if (layout === 'timm' && opts.convMlp && name.includes('.mlp.')) return { shape: [...w.shape, 1, 1], data: w.data };
    return w;
  }
  if (/\.gamma$/.test(name)) return { shape: layout === 'torchvision' ? [s[0], 1, 1] : [s[0]], data: t.data };
  if (/\.grn\.(weight|bias)$/.test(name)) return { shape: layout === 'timm' ? [s[0]] : [1, 1, 1, s[0]], data: t.data };
  return { shape: [...s], data: t.data };
}

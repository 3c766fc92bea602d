// Differentiable ops. Each one emits its forward ONNX node(s) and, right next
// to them, the vector-Jacobian product that autodiff calls on the way back.
// Only gradients with respect to activations and trainable inputs are
// supported: frozen weights (linear, rmsNorm) never receive one.

import type { RopeLayout } from './config';
import { Dim, MS_DOMAIN, onnxType, Value } from './graph';

// ---- shape helpers (nodes without gradient) ----

export function broadcastShape(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    out.push(x === 1 ? y : y === 1 ? x : typeof x === 'number' ? x : y);
  }
  return out;
}

/** Sums a broadcast gradient back down to `shape` (the shape of the operand it flows to). */
export function reduceTo(grad: Value, shape: readonly Dim[]): Value {
  const g = grad.graph;
  const lead = grad.rank - shape.length;
  let out = grad;
  if (lead > 0) {
    const axes = Array.from({ length: lead }, (_, i) => i);
    out = g.node('ReduceSum', [out, g.ints(axes)], { keepdims: 0 }, grad.shape.slice(lead), grad.type);
  }
  const axes = shape.flatMap((d, i) => (d === 1 && out.shape[i] !== 1 ? [i] : []));
  if (axes.length === 0) return out;
  return g.node('ReduceSum', [out, g.ints(axes)], { keepdims: 1 }, shape, grad.type);
}

function shapeOf(x: Value): Value {
  return x.graph.node('Shape', [x], {}, [x.rank], 'int64');
}

function zerosLike(x: Value): Value {
  const g = x.graph;
  const zero = {
    name: 'value',
    dims: [1],
    dataType: onnxType(x.type),
    ...(x.type === 'double' ? { doubleData: [0] } : { floatData: [0] }),
  };
  return g.node('ConstantOfShape', [shapeOf(x)], { value: zero }, x.shape, x.type);
}

function unsqueeze(x: Value, axis: number): Value {
  const shape = [...x.shape];
  shape.splice(axis < 0 ? x.rank + 1 + axis : axis, 0, 1);
  return x.graph.node('Unsqueeze', [x, x.graph.ints([axis])], {}, shape, x.type);
}

function swapLast(x: Value): Value {
  const perm = [...x.shape.keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return x.graph.node(
    'Transpose',
    [x],
    { perm },
    perm.map((p) => x.shape[p]),
    x.type,
  );
}

/** A broadcasting binary node that records no gradient: for use inside VJPs and compound forwards. */
function noGrad(op: string, a: Value, b: Value): Value {
  return a.graph.node(op, [a, b], {}, broadcastShape(a.shape, b.shape), a.type);
}

// ---- elementwise ----

export function add(a: Value, b: Value): Value {
  const out = noGrad('Add', a, b);
  return a.graph.record([a, b], out, (gy) => [
    a.requiresGrad ? reduceTo(gy, a.shape) : null,
    b.requiresGrad ? reduceTo(gy, b.shape) : null,
  ]);
}

export function sub(a: Value, b: Value): Value {
  const out = noGrad('Sub', a, b);
  return a.graph.record([a, b], out, (gy) => [
    a.requiresGrad ? reduceTo(gy, a.shape) : null,
    b.requiresGrad ? reduceTo(neg(gy), b.shape) : null,
  ]);
}

export function mul(a: Value, b: Value): Value {
  const out = noGrad('Mul', a, b);
  return a.graph.record([a, b], out, (gy) => [
    a.requiresGrad ? reduceTo(noGrad('Mul', gy, b), a.shape) : null,
    b.requiresGrad ? reduceTo(noGrad('Mul', gy, a), b.shape) : null,
  ]);
}

export function neg(x: Value): Value {
  const out = x.graph.node('Neg', [x], {}, x.shape, x.type);
  return x.graph.record([x], out, (gy) => [neg(gy)]);
}

/** x * c for a constant c. */
export function scale(x: Value, c: number): Value {
  const k = x.graph.scalar(c, x.type);
  const out = noGrad('Mul', x, k);
  return x.graph.record([x], out, (gy) => [noGrad('Mul', gy, k)]);
}

/** x * sigmoid(x): the SwiGLU activation. d/dx = s * (1 + x * (1 - s)). */
export function silu(x: Value): Value {
  const g = x.graph;
  const s = g.node('Sigmoid', [x], {}, x.shape, x.type);
  const out = noGrad('Mul', x, s);
  return g.record([x], out, (gy) => {
    const oneMinusS = noGrad('Sub', g.scalar(1, x.type), s);
    const inner = noGrad('Add', g.scalar(1, x.type), noGrad('Mul', x, oneMinusS));
    return [noGrad('Mul', gy, noGrad('Mul', s, inner))];
  });
}

/**
 * log(1 + e^x) = max(x, 0) + log(1 + e^−|x|), stable for large |x| and built from
 * ops every provider has in float32 and float64; d/dx = sigmoid(x).
 * Used by the DPO loss: −log σ(z) = softplus(−z).
 */
export function softplus(x: Value): Value {
  const g = x.graph;
  const u = (name: string, v: Value) => g.node(name, [v], {}, x.shape, x.type);
  const tail = u('Log', noGrad('Add', g.scalar(1, x.type), u('Exp', u('Neg', u('Abs', x)))));
  const out = noGrad('Add', u('Relu', x), tail);
  return g.record([x], out, (gy) => [noGrad('Mul', gy, g.node('Sigmoid', [x], {}, x.shape, x.type))]);
}

// ---- reductions ----

/** Sum of every element, a scalar. */
export function sum(x: Value): Value {
  const g = x.graph;
  const out = g.node('ReduceSum', [x], { keepdims: 0 }, [], x.type);
  return g.record([x], out, (gy) => [g.node('Expand', [gy, shapeOf(x)], {}, x.shape, x.type)]);
}

// ---- linear algebra ----

/** Batched matrix product with broadcasting over leading dims. */
export function matmul(a: Value, b: Value): Value {
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = a.graph.node('MatMul', [a, b], {}, [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]], a.type);
  return a.graph.record([a, b], out, (gy) => [
    a.requiresGrad ? reduceTo(matmul(gy, swapLast(b)), a.shape) : null,
    b.requiresGrad ? reduceTo(matmul(swapLast(a), gy), b.shape) : null,
  ]);
}

/** A frozen matrix W [rows, cols] as MatMulNBits' inputs (layout: src/engine/quantize.ts). */
export interface NBitsMatrix {
  /** uint8 [rows, ⌈cols/blockSize⌉, blockSize·bits/8]. */
  data: Value;
  /** float [rows · ⌈cols/blockSize⌉]. */
  scales: Value;
  /** Absent: symmetric (2^(bits−1)). */
  zeroPoints?: Value;
  /**
   * float [⌈cols/blockSize⌉, rows]: a per-block offset, W[n, k] = (q − zero)·scale + mins[⌊k/blockSize⌋, n]
   * (GGUF's Q4_1/Q4_K blocks, whose d·q + m needs a zero point of −m/d, not an integer).
   */
  mins?: Value;
  bits: 4 | 8;
  blockSize: number;
  rows: number;
  cols: number;
}

/**
 * A quantized frozen linear layer. `transposed` is Wᵀ quantized on its own
 * (blocks along W's rows), registered only when a backward pass asks for it,
 * so inference graphs never load it.
 */
export interface QuantizedLinear {
  weight: NBitsMatrix;
  transposed: () => NBitsMatrix;
  /** MatMulNBits' accuracy_level: 0 computes in float32, 4 quantises activations to int8 per block. */
  accuracyLevel: number;
}

/**
 * x [.., cols] · dequant(W)ᵀ → [.., rows]: one MatMulNBits node, no gradient. With `mins`, plus
 * Σ_b (Σ_{k in block b} x[k])·mins[b, n]: the blocks' offsets as a second, small product of x's
 * per-block sums [.., cols/blockSize] by mins [cols/blockSize, rows], so the blocks stay integer.
 */
export function matMulNBits(x: Value, w: NBitsMatrix, accuracyLevel: number): Value {
  const g = x.graph;
  const inputs = [x, w.data, w.scales, ...(w.zeroPoints ? [w.zeroPoints] : [])];
  const attrs = { K: w.cols, N: w.rows, bits: w.bits, block_size: w.blockSize, accuracy_level: accuracyLevel };
  const shape = [...x.shape.slice(0, -1), w.rows];
  const product = g.node('MatMulNBits', inputs, attrs, shape, x.type, undefined, MS_DOMAIN);
  if (!w.mins) return product;
  if (w.cols % w.blockSize !== 0) throw new Error(`block offsets need whole blocks: ${w.cols} columns, blocks of ${w.blockSize}`);
  const blocks = w.cols / w.blockSize;
  const lead = x.shape.slice(0, -1);
  const split = g.node('Reshape', [x, g.ints([...lead.map(() => 0), blocks, w.blockSize])], {}, [...lead, blocks, w.blockSize], x.type);
  const sums = g.node('ReduceSum', [split, g.ints([-1])], { keepdims: 0 }, [...lead, blocks], x.type);
  return noGrad('Add', product, g.node('MatMul', [sums, w.mins], {}, shape, x.type));
}

/**
 * y = x Wᵀ (+ bias) for x [M, in] and a frozen W [out, in] (Hugging Face layout),
 * float32 (Gemm) or quantized (MatMulNBits). VJP dX = dY·W: only activations get
 * gradients; for a quantized W it runs over the separately quantized Wᵀ.
 */
export function linear(x: Value, w: Value | QuantizedLinear, bias?: Value): Value {
  const g = x.graph;
  if (w instanceof Value) {
    const out = g.node('Gemm', bias ? [x, w, bias] : [x, w], { transB: 1 }, [x.shape[0], w.shape[0]], x.type);
    return g.record([x], out, (gy) => [g.node('Gemm', [gy, w], {}, x.shape, x.type)]);
  }
  const product = matMulNBits(x, w.weight, w.accuracyLevel);
  const out = bias ? noGrad('Add', product, bias) : product;
  return g.record([x], out, (gy) => [matMulNBits(gy, w.transposed(), w.accuracyLevel)]);
}

// ---- normalisation and attention pieces ----

/** RMSNorm over the last axis: x · rsqrt(mean(x²) + eps) · w, with w frozen. */
export function rmsNorm(x: Value, w: Value, eps: number): Value {
  const g = x.graph;
  const meanSq = g.node('ReduceMean', [noGrad('Mul', x, x)], { axes: [-1], keepdims: 1 }, [...x.shape.slice(0, -1), 1], x.type);
  const r = g.node(
    'Reciprocal',
    [g.node('Sqrt', [noGrad('Add', meanSq, g.scalar(eps, x.type))], {}, meanSq.shape, x.type)],
    {},
    meanSq.shape,
    x.type,
  );
  const out = noGrad('Mul', noGrad('Mul', x, r), w);
  return g.record([x], out, (gy) => {
    // dx = r·(gy·w) − x·r³·mean(gy·w·x)
    const gw = noGrad('Mul', gy, w);
    const dot = g.node('ReduceMean', [noGrad('Mul', gw, x)], { axes: [-1], keepdims: 1 }, meanSq.shape, x.type);
    const r3dot = noGrad('Mul', noGrad('Mul', noGrad('Mul', r, r), r), dot);
    return [noGrad('Sub', noGrad('Mul', gw, r), noGrad('Mul', x, r3dot))];
  });
}

/** Softmax over the last axis; VJP y · (gy − Σ gy·y). */
export function softmax(x: Value): Value {
  const g = x.graph;
  const y = g.node('Softmax', [x], { axis: -1 }, x.shape, x.type);
  return g.record([x], y, (gy) => {
    const dot = g.node('ReduceSum', [noGrad('Mul', gy, y), g.ints([-1])], { keepdims: 1 }, [...x.shape.slice(0, -1), 1], x.type);
    return [noGrad('Mul', y, noGrad('Sub', gy, dot))];
  });
}

/**
 * Rotary embedding of x [B, T, heads, d_h] with cos/sin [B, T, 1, d_h/2].
 * The rotation is orthogonal, so its VJP is the same rotation by −θ.
 */
export function rope(x: Value, cos: Value, sin: Value, layout: RopeLayout): Value {
  const out = rotate(x, cos, sin, layout);
  return x.graph.record([x], out, (gy) => [rotate(gy, cos, x.graph.node('Neg', [sin], {}, sin.shape, sin.type), layout)]);
}

function rotate(x: Value, cos: Value, sin: Value, layout: RopeLayout): Value {
  const g = x.graph;
  const half = (x.shape[3] as number) / 2;
  // Both layouts become "pairs (x1, x2) along one axis": halves of the head, or
  // the trailing axis of a [.., d_h/2, 2] view for interleaved pairs.
  const src = layout === 'half' ? x : g.node('Reshape', [x, g.ints([0, 0, 0, half, 2])], {}, [...x.shape.slice(0, 3), half, 2], x.type);
  const c = layout === 'half' ? cos : unsqueeze(cos, -1);
  const s = layout === 'half' ? sin : unsqueeze(sin, -1);
  const axis = src.rank - 1;
  const width = layout === 'half' ? half : 1;
  const part = (start: number) =>
    g.node('Slice', [src, g.ints([start]), g.ints([start + width]), g.ints([axis])], {}, [...src.shape.slice(0, -1), width], x.type);
  const x1 = part(0);
  const x2 = part(width);
  const o1 = noGrad('Sub', noGrad('Mul', x1, c), noGrad('Mul', x2, s));
  const o2 = noGrad('Add', noGrad('Mul', x2, c), noGrad('Mul', x1, s));
  const joined = g.node('Concat', [o1, o2], { axis }, src.shape, x.type);
  return layout === 'half' ? joined : g.node('Reshape', [joined, g.ints([0, 0, 0, -1])], {}, x.shape, x.type);
}

// ---- shape ops ----

/**
 * Reshape with ONNX semantics (0 copies a dim, -1 infers one); `spec` may be a
 * run-time shape tensor. `shape` is the resulting static shape.
 */
export function reshape(x: Value, spec: number[] | Value, shape: Dim[]): Value {
  const g = x.graph;
  const out = g.node('Reshape', [x, Array.isArray(spec) ? g.ints(spec) : spec], {}, shape, x.type);
  return g.record([x], out, (gy) => [g.node('Reshape', [gy, shapeOf(x)], {}, x.shape, x.type)]);
}

export function transpose(x: Value, perm: number[]): Value {
  const g = x.graph;
  const out = g.node(
    'Transpose',
    [x],
    { perm },
    perm.map((p) => x.shape[p]),
    x.type,
  );
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return g.record([x], out, (gy) => [transpose(gy, inverse)]);
}

/** Rows `index` [K] (distinct) of x [M, d]; VJP scatters the rows back into zeros. */
export function gatherRows(x: Value, index: Value): Value {
  const g = x.graph;
  const out = g.node('Gather', [x, index], { axis: 0 }, [index.shape[0], ...x.shape.slice(1)], x.type);
  // reduction 'add': a row gathered twice gets both gradients (a refinement scores several tokens at one position).
  return g.record([x], out, (gy) => [g.node('ScatterND', [zerosLike(x), unsqueeze(index, -1), gy], { reduction: 'add' }, x.shape, x.type)]);
}

/** Row i of x [R, C] as [C]. */
export function row(x: Value, i: number): Value {
  const g = x.graph;
  const index = g.ints([i]);
  const out = g.node('Gather', [x, g.constant([i], [], 'int64')], { axis: 0 }, x.shape.slice(1), x.type);
  return g.record([x], out, (gy) => [g.node('ScatterND', [zerosLike(x), unsqueeze(index, 0), unsqueeze(gy, 0)], {}, x.shape, x.type)]);
}

// ---- loss ----

/**
 * log softmax(logits)[ids] per row: logits [K, V], ids [K] int64 → [K].
 * VJP: gy · (onehot(ids) − softmax(logits)), formed as −gy·softmax with gy
 * scattered onto the target ids, so no one-hot [K, V] is ever materialised
 * (the logits are the largest tensors of a training step).
 */
export function tokenLogProb(logits: Value, ids: Value): Value {
  const g = logits.graph;
  const [k] = logits.shape;
  const logp = g.node('LogSoftmax', [logits], { axis: -1 }, logits.shape, logits.type);
  const column = unsqueeze(ids, -1);
  const picked = g.node('GatherElements', [logp, column], { axis: 1 }, [k, 1], logits.type);
  const out = g.node('Reshape', [picked, g.ints([-1])], {}, [k], logits.type);
  return g.record([logits], out, (gy) => {
    const gyColumn = unsqueeze(gy, -1);
    const p = g.node('Exp', [logp], {}, logits.shape, logits.type);
    const spread = noGrad('Mul', p, g.node('Neg', [gyColumn], {}, gyColumn.shape, gy.type));
    return [g.node('ScatterElements', [spread, column, gyColumn], { axis: 1, reduction: 'add' }, logits.shape, logits.type)];
  });
}

/**
 * `body` applied to `chunk` rows at a time of `inputs` (each [K, ..], K the same), in one ONNX Scan:
 * only one chunk's intermediates exist at a time. `body` runs in the Scan's body graph on one chunk
 * ([c, ..] each, c = min(K, chunk)) and returns outputs [c, ..], joined back to [K, ..]. K is padded
 * with zeros to whole chunks, cut again after. `differentiable`: the body's float inputs record a
 * tape of their own, for a body that differentiates itself (the Scan has no VJP: see chunkedRows).
 */
export function inChunks(inputs: Value[], chunk: number, body: (chunks: Value[]) => Value[], differentiable = false): Value[] {
  const g = inputs[0].graph;
  const k = g.node('Shape', [inputs[0]], {}, [inputs[0].rank], 'int64');
  const K = g.node('Slice', [k, g.ints([0]), g.ints([1])], {}, [1], 'int64');
  // Chunks of min(K, chunk) rows (at least 1): a pass with fewer rows is one chunk, unpadded.
  const c = g.node('Max', [g.node('Min', [K, g.ints([chunk])], {}, [1], 'int64'), g.ints([1])], {}, [1], 'int64');
  const pad = g.node('Mod', [g.node('Sub', [c, g.node('Mod', [K, c], {}, [1], 'int64')], {}, [1], 'int64'), c], {}, [1], 'int64');
  const rest = (v: Value) => v.shape.slice(1).map((s) => s as number);
  const chunked = inputs.map((v) => {
    const zeros = rest(v).map(() => 0);
    const pads = g.node('Concat', [g.ints([0, ...zeros]), pad, g.ints(zeros)], { axis: 0 }, [2 * v.rank], 'int64');
    const full = g.node('Pad', [v, pads], {}, v.shape, v.type);
    const spec = g.node('Concat', [g.ints([-1]), c, g.ints(rest(v))], { axis: 0 }, [v.rank + 1], 'int64');
    return g.node('Reshape', [full, spec], {}, ['chunks', 'chunk', ...rest(v)], v.type);
  });
  const sub = g.subgraph();
  const outs = body(
    inputs.map((v) =>
      sub.input(sub.fresh('chunk'), v.type, ['chunk', ...rest(v)], differentiable && (v.type === 'float' || v.type === 'double')),
    ),
  );
  outs.forEach((o) => sub.output(o, sub.fresh('chunk_out')));
  const scanned = g.nodeOutputs(
    'Scan',
    chunked,
    { body: { graph: sub.toGraphProto() }, num_scan_inputs: inputs.length },
    outs.map((o) => ({ shape: ['chunks', ...o.shape], type: o.type })),
  );
  return scanned.map((v, i) => {
    const tail = rest(outs[i]);
    const flat = g.node('Reshape', [v, g.ints([-1, ...tail])], {}, ['rows', ...tail], v.type);
    return g.node('Slice', [flat, g.ints([0]), K, g.ints([0])], {}, [inputs[0].shape[0], ...tail], v.type);
  });
}

/**
 * A row-wise function of x [K, d] (with `aux` [K], e.g. target ids), `chunk` rows at a time
 * (inChunks), for an f whose output k depends on row k of x only: then the gradient of Σ y in
 * each chunk gives every row of the Jacobian dy_k/dx_k [K, d], and the VJP is gy ⊙ that Jacobian.
 * `body` returns y [c] and the Jacobian [c, d] of one chunk (the LM head's log-probabilities: only
 * one chunk's [chunk × vocabulary] logits exist at a time).
 */
export function chunkedRows(x: Value, aux: Value, chunk: number, body: (x: Value, aux: Value) => { y: Value; jacobian: Value }): Value {
  const [y, jacobian] = inChunks(
    [x, aux],
    chunk,
    ([rows, a]) => {
      const out = body(rows, a);
      return [out.y, out.jacobian];
    },
    true,
  );
  return x.graph.record([x], y, (gy) => [noGrad('Mul', unsqueeze(gy, -1), jacobian)]);
}

// A small tensor-graph builder that records ONNX nodes.
//
// Every differentiable op (kernels/ops.ts) emits its forward node(s) through
// `Graph.node` and, when one of its inputs needs a gradient, pushes a tape
// entry whose `backward` emits the vector-Jacobian product. Reverse-mode
// autodiff (kernels/autodiff.ts) then walks the tape backwards. Gradient
// values never require gradients themselves, so VJPs are written with the
// same ops and simply record nothing.

import { onnx } from 'onnx-proto';

/** A dimension: a fixed size, or a symbolic name bound at run time ("batch", "seq"). */
export type Dim = number | string;

export type ElemType = 'float' | 'double' | 'int64' | 'bool' | 'uint8';

const ONNX_ELEM: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  double: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
};

const BYTES: Partial<Record<ElemType, number>> = { float: 4, uint8: 1 };

/** onnxruntime's contrib-op domain (MatMulNBits and friends). */
export const MS_DOMAIN = 'com.microsoft';

/** The ONNX TensorProto data type code of an element type (for Cast's `to`, ConstantOfShape's `value`). */
export function onnxType(type: ElemType): number {
  return ONNX_ELEM[type];
}

/** Attribute values: integers, `{ float }` for floats (ONNX keeps the two apart), int lists, strings, tensors, subgraphs. */
export type Attr = number | { float: number } | number[] | string | onnx.ITensorProto | { graph: onnx.IGraphProto };

export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly shape: readonly Dim[],
    readonly type: ElemType,
    readonly requiresGrad: boolean,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
}

export interface TapeEntry {
  inputs: Value[];
  output: Value;
  /** Emits d(loss)/d(input) for each input (null where no gradient flows). */
  backward: (gradOut: Value) => (Value | null)[];
}

/** A frozen weight that lives in the shared external-data file. */
export interface WeightInit {
  name: string;
  shape: number[];
  /** Byte offset in the external weights file. */
  offset: number;
  /** float32 (the default) or uint8 (packed quantized blocks). */
  type: 'float' | 'uint8';
}

export class Graph {
  readonly nodes: onnx.INodeProto[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly tape: TapeEntry[] = [];
  private readonly consts: onnx.ITensorProto[] = [];
  private readonly weights = new Map<string, { value: Value; init: WeightInit }>();
  private counter = 0;
  /** The outermost graph: it names every value and holds every weight. */
  private readonly root: Graph;

  /** `float` is the compute type: float32 for the engine, float64 for gradient checks. */
  constructor(
    readonly float: 'float' | 'double' = 'float',
    parent?: Graph,
  ) {
    this.root = parent ? parent.root : this;
  }

  /**
   * A graph nested in this one, the body of a control-flow node (Scan): its names are unique in
   * the whole model, its weights are the model's, and its nodes may read this graph's values by name.
   */
  subgraph(): Graph {
    return new Graph(this.float, this);
  }

  fresh(hint: string): string {
    return `${hint}_${this.root.counter++}`;
  }

  input(name: string, type: ElemType, shape: Dim[], requiresGrad = false): Value {
    const v = new Value(this, name, shape, type, requiresGrad);
    this.inputs.push(v);
    return v;
  }

  output(v: Value, name: string): Value {
    const out = this.node('Identity', [v], {}, v.shape, v.type, name);
    this.outputs.push(out);
    return out;
  }

  /** A frozen weight, stored once in the external-data file and shared by every session. */
  weight(name: string, shape: number[], offset: number, type: 'float' | 'uint8' = 'float'): Value {
    if (this.root !== this) {
      const outer = this.root.weight(name, shape, offset, type);
      return new Value(this, outer.name, outer.shape, outer.type, false);
    }
    const known = this.weights.get(name);
    if (known) return known.value;
    const value = new Value(this, name, shape, type === 'float' ? this.float : type, false);
    this.weights.set(name, { value, init: { name, shape, offset, type } });
    return value;
  }

  /** A constant tensor embedded in the graph. */
  constant(data: ArrayLike<number> | ArrayLike<bigint>, shape: number[], type: ElemType = this.float): Value {
    const name = this.fresh('const');
    const t: onnx.ITensorProto = { name, dims: shape, dataType: ONNX_ELEM[type] };
    if (type === 'float') t.floatData = Array.from(data as ArrayLike<number>);
    else if (type === 'double') t.doubleData = Array.from(data as ArrayLike<number>);
    else if (type === 'int64') t.int64Data = Array.from(data as ArrayLike<number>, (x) => Number(x));
    else t.int32Data = Array.from(data as ArrayLike<number>);
    this.consts.push(t);
    return new Value(this, name, shape, type, false);
  }

  scalar(x: number, type: ElemType = this.float): Value {
    return this.constant([x], [], type);
  }

  ints(xs: number[]): Value {
    return this.constant(xs, [xs.length], 'int64');
  }

  /** Emits one raw ONNX node with a single output; records no gradient. */
  node(
    op: string,
    inputs: (Value | null)[],
    attrs: Record<string, Attr>,
    shape: readonly Dim[],
    type: ElemType,
    name?: string,
    domain = '',
  ): Value {
    return this.nodeOutputs(op, inputs, attrs, [{ shape, type }], name, domain)[0];
  }

  /** Emits one raw ONNX node with as many outputs as `outputs` describes; records no gradient. */
  nodeOutputs(
    op: string,
    inputs: (Value | null)[],
    attrs: Record<string, Attr>,
    outputs: { shape: readonly Dim[]; type: ElemType }[],
    name?: string,
    domain = '',
  ): Value[] {
    const first = name ?? this.fresh(op.toLowerCase());
    const outs = outputs.map((o, i) => new Value(this, i === 0 ? first : `${first}_${i}`, o.shape, o.type, false));
    this.nodes.push({
      opType: op,
      domain,
      name: first,
      input: inputs.map((v) => (v ? v.name : '')),
      output: outs.map((v) => v.name),
      attribute: Object.entries(attrs).map(([k, a]) => attribute(k, a)),
    });
    return outs;
  }

  /** Marks `out` as differentiable when any input is, and records how to differentiate it. */
  record(inputs: Value[], out: Value, backward: TapeEntry['backward']): Value {
    if (!inputs.some((v) => v.requiresGrad)) return out;
    const tracked = new Value(this, out.name, out.shape, out.type, true);
    this.tape.push({ inputs, output: tracked, backward });
    return tracked;
  }

  weightInits(): WeightInit[] {
    return [...this.weights.values()].map((w) => w.init);
  }

  /** This graph as a subgraph attribute (a Scan's body): its nodes, constants, inputs and outputs. */
  toGraphProto(): onnx.IGraphProto {
    return {
      name: this.fresh('body'),
      node: this.nodes,
      initializer: this.usedConsts(),
      input: this.inputs.map(io),
      output: this.outputs.map(io),
    };
  }

  /** Ops make constants for their VJPs up front; a graph without that backward pass leaves them unused. */
  private usedConsts(): onnx.ITensorProto[] {
    const used = new Set(this.nodes.flatMap((n) => n.input ?? []));
    return this.consts.filter((c) => used.has(c.name!));
  }

  /** The ONNX model; weights are external data in `weightsPath`, relative to the model file. */
  toModel(weightsPath: string): Uint8Array {
    const initializers: onnx.ITensorProto[] = [
      ...this.usedConsts(),
      ...this.weightInits().map((w) => ({
        name: w.name,
        dims: w.shape,
        dataType: ONNX_ELEM[w.type],
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: weightsPath },
          { key: 'offset', value: String(w.offset) },
          { key: 'length', value: String(BYTES[w.type]! * w.shape.reduce((a, b) => a * b, 1)) },
        ],
      })),
    ];
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'aligner-kernels',
      opsetImport: [
        { domain: '', version: 17 },
        { domain: MS_DOMAIN, version: 1 },
      ],
      graph: {
        name: 'aligner',
        node: this.nodes,
        initializer: initializers,
        input: this.inputs.map(io),
        output: this.outputs.map(io),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function io(v: Value): onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_ELEM[v.type],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, a: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof a === 'number') return { name, type: T.INT, i: a };
  if (typeof a === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(a) };
  if (Array.isArray(a)) return { name, type: T.INTS, ints: a };
  if ('float' in a) return { name, type: T.FLOAT, f: a.float };
  if ('graph' in a) return { name, type: T.GRAPH, g: a.graph };
  return { name, type: T.TENSOR, t: a };
}

// Runs graphs on onnxruntime-node. The execution provider is a parameter;
// when the requested one cannot start we fall back to CPU and say why.

import * as ort from 'onnxruntime-node';
import { Graph } from './graph';

export type Provider = 'cpu' | 'webgpu' | 'cuda';

export interface RuntimeOptions {
  /** Preferred provider; 'auto' tries cuda, then webgpu, then cpu. */
  device?: 'auto' | Provider;
  /** Intra-op threads (default: onnxruntime's choice, one per core). */
  threads?: number;
  /** Write onnxruntime's per-op profile (chrome trace JSON, `aligner-profile_*.json`) in the working directory. */
  profile?: boolean;
  log?: (message: string) => void;
}

/** The frozen weights: one float32 blob that every session reads in place. */
export interface WeightBlob {
  path: string;
  data: Uint8Array;
}

export class Runtime {
  private constructor(
    readonly provider: Provider,
    private readonly opts: RuntimeOptions,
    private readonly blob: WeightBlob,
  ) {}

  /** Picks the first provider that can run a trivial graph. */
  static async create(blob: WeightBlob, opts: RuntimeOptions = {}): Promise<Runtime> {
    const wanted = opts.device ?? 'cpu';
    const order: Provider[] = wanted === 'auto' ? ['cuda', 'webgpu', 'cpu'] : wanted === 'cpu' ? ['cpu'] : [wanted, 'cpu'];
    for (const provider of order) {
      const problem = provider === 'cpu' ? null : await probe(provider);
      if (!problem) return new Runtime(provider, opts, blob);
      if (wanted !== 'auto' || provider !== 'cuda') {
        opts.log?.(`execution provider "${provider}" is not available (${problem}); falling back to CPU`);
      }
    }
    throw new Error('unreachable: the CPU provider always exists');
  }

  async session(model: Uint8Array): Promise<ort.InferenceSession> {
    return ort.InferenceSession.create(model, {
      executionProviders: [this.provider],
      graphOptimizationLevel: 'all',
      ...(this.opts.threads ? { intraOpNumThreads: this.opts.threads } : {}),
      enableProfiling: this.opts.profile ?? false,
      ...(this.opts.profile ? { profileFilePrefix: 'aligner-profile' } : {}),
      externalData: [{ path: this.blob.path, data: this.blob.data }],
    });
  }
}

async function probe(provider: Provider): Promise<string | null> {
  if (!ort.listSupportedBackends().some((b) => b.name === provider)) return 'not built into this onnxruntime-node';
  try {
    const s = await ort.InferenceSession.create(identityModel(), { executionProviders: [provider] });
    await s.release();
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

function identityModel(): Uint8Array {
  const g = new Graph();
  g.output(g.input('x', 'float', [1]), 'y');
  return g.toModel('none.bin');
}

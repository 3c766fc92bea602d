#!/usr/bin/python3
"""PyTorch CPU reference for the Aligner bench (SPEC section 2).

Llama (Hugging Face layout: rotate-half RoPE, GQA, RMSNorm, SwiGLU) plus an Aligner adapter:
a global prefix P [N, d] projected by each adapted layer's own frozen k/v weights (no norm, no RoPE),
a per-head softmax over the N prefix slots only, and one gate per adapted layer and query head,
added to the attention output before o_proj.

Usage (call the system python, which has Debian's python3-torch):
  /usr/bin/python3 test/bench/torch_ref.py --model DIR --mode train|prefill|decode [--threads 2] ...
  /usr/bin/python3 test/bench/torch_ref.py --model DIR --mode all     # each mode in its own process
  /usr/bin/python3 test/bench/torch_ref.py --selfcheck [--model ../shared/models/stories260K]

Each mode prints one JSON object on stdout (progress goes to stderr).
"""
import argparse
import json
import math
import os
import resource
import struct
import subprocess
import sys
import time

# Debian's torch runs its own ops on libgomp threads and its matmuls on openblas-pthread's threads.
# With libgomp's default (spin-waiting) policy the idle OpenMP workers keep spinning while OpenBLAS's
# workers need the same cores: on this 2-core machine that made decode steps 1-12x slower and very
# erratic (47 ms vs 50-580 ms per smol135m token). Passive waiting removes the fight; it must be set
# before libgomp loads, i.e. before `import torch`. Override by setting the variable yourself.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print("[torch_ref]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- safetensors / model loading

_DT = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def load_safetensors(path):
    """Parse safetensors with struct+json; read each tensor straight into a torch buffer (one copy)."""
    out = {}
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen).decode("utf-8"))
        base = 8 + hlen
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dt, size = _DT[info["dtype"]]
            a, b = info["data_offsets"]
            n = (b - a) // size
            t = torch.empty(n, dtype=dt)
            f.seek(base + a)
            view = t.view(torch.uint8).numpy() if dt != torch.float32 else t.numpy()
            got = f.readinto(memoryview(view).cast("B"))
            if got != b - a:
                raise IOError(f"short read for {name}")
            out[name] = t.view(info["shape"]).float()
    return out


class Cfg:
    def __init__(self, d):
        self.hidden = d["hidden_size"]
        self.ffn = d["intermediate_size"]
        self.layers = d["num_hidden_layers"]
        self.heads = d["num_attention_heads"]
        self.kv_heads = d.get("num_key_value_heads") or self.heads
        self.head_dim = d.get("head_dim") or self.hidden // self.heads
        self.vocab = d["vocab_size"]
        self.eps = d.get("rms_norm_eps", 1e-5)
        self.theta = d.get("rope_theta", 10000.0)
        self.tied = d.get("tie_word_embeddings", False)
        self.max_pos = d.get("max_position_embeddings", 2048)


class Llama:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = Cfg(json.load(f))
        w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        for t in w.values():
            t.requires_grad_(False)
        c = self.cfg
        self.embed = w["model.embed_tokens.weight"]
        self.lm_head = self.embed if (c.tied or "lm_head.weight" not in w) else w["lm_head.weight"]
        self.norm = w["model.norm.weight"]
        self.L = []
        for i in range(c.layers):
            p = f"model.layers.{i}."
            self.L.append({
                "ln1": w[p + "input_layernorm.weight"],
                "ln2": w[p + "post_attention_layernorm.weight"],
                "q": w[p + "self_attn.q_proj.weight"],
                "k": w[p + "self_attn.k_proj.weight"],
                "v": w[p + "self_attn.v_proj.weight"],
                "o": w[p + "self_attn.o_proj.weight"],
                "gate": w[p + "mlp.gate_proj.weight"],
                "up": w[p + "mlp.up_proj.weight"],
                "down": w[p + "mlp.down_proj.weight"],
                "qb": w.get(p + "self_attn.q_proj.bias"),
                "kb": w.get(p + "self_attn.k_proj.bias"),
                "vb": w.get(p + "self_attn.v_proj.bias"),
            })
        # HF rotate-half RoPE tables: inv_freq over the first half, duplicated.
        hd = c.head_dim
        inv = 1.0 / (c.theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        pos = torch.arange(max(c.max_pos, 4096), dtype=torch.float64)
        ang = torch.outer(pos, inv)
        ang = torch.cat([ang, ang], dim=-1)
        self.cos = ang.cos().float()
        self.sin = ang.sin().float()

    # -- pieces
    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.eps) * w

    def rope(self, x, start):
        # x [B, heads, T, hd]
        T = x.shape[2]
        cos = self.cos[start:start + T]
        sin = self.sin[start:start + T]
        h = x.shape[-1] // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
        return x * cos + rot * sin

    def prefix_kv(self, adapter):
        """Per adapted layer: K_p, V_p [G, N, hd] from the raw prefix (no norm, no RoPE)."""
        c = self.cfg
        P = adapter["prefix"]
        N = P.shape[0]
        res = {}
        for l in range(adapter["start_layer"], c.layers):
            lw = self.L[l]
            pk = F.linear(P, lw["k"], lw["kb"]).view(N, c.kv_heads, c.head_dim).transpose(0, 1)
            pv = F.linear(P, lw["v"], lw["vb"]).view(N, c.kv_heads, c.head_dim).transpose(0, 1)
            res[l] = (pk, pv)
        return res

    def forward(self, ids, adapter=None, cache=None, pkv=None, last_only=False):
        """ids [B, T] long. cache: list of [k, v] per layer (appended in place) or None.
        Returns logits [B, T, V] (or [B, 1, V] with last_only)."""
        c = self.cfg
        B, T = ids.shape
        H, G, hd = c.heads, c.kv_heads, c.head_dim
        rep = H // G
        start = 0 if cache is None or cache[0] is None else cache[0][0].shape[2]
        if adapter is not None and pkv is None:
            pkv = self.prefix_kv(adapter)
        x = F.embedding(ids, self.embed)
        scale = 1.0 / math.sqrt(hd)
        causal = None
        if T > 1:
            causal = torch.full((T, start + T), float("-inf")).triu(start + 1)
        for l, lw in enumerate(self.L):
            h = self.rms(x, lw["ln1"])
            q = F.linear(h, lw["q"], lw["qb"]).view(B, T, H, hd).transpose(1, 2)
            k = F.linear(h, lw["k"], lw["kb"]).view(B, T, G, hd).transpose(1, 2)
            v = F.linear(h, lw["v"], lw["vb"]).view(B, T, G, hd).transpose(1, 2)
            q = self.rope(q, start)
            k = self.rope(k, start)
            if cache is not None:
                if cache[l] is not None:
                    k = torch.cat([cache[l][0], k], dim=2)
                    v = torch.cat([cache[l][1], v], dim=2)
                cache[l] = (k, v)
            # GQA without copying K/V: query head h = g*rep + r uses kv head g = h // rep, so
            # [B, H, T, hd] views as [B, G, rep*T, hd] against K/V [B, G, S, hd].
            qg = q.reshape(B, G, rep * T, hd)
            s = torch.matmul(qg, k.transpose(-1, -2)) * scale  # [B, G, rep*T, S]
            if causal is not None:
                s = (s.view(B, G, rep, T, -1) + causal).view(B, G, rep * T, -1)
            att = torch.matmul(torch.softmax(s, dim=-1), v)  # [B, G, rep*T, hd]
            if adapter is not None and l >= adapter["start_layer"]:
                pk, pv = pkv[l]  # [G, N, hd]: softmax over the N prefix slots only, no mask
                a = torch.softmax(torch.matmul(qg, pk.transpose(-1, -2)) * scale, dim=-1)  # [B, G, rep*T, N]
                g = adapter["gates"][l - adapter["start_layer"]].view(1, G, rep, 1, 1)
                att = (att.view(B, G, rep, T, hd) + g * torch.matmul(a, pv).view(B, G, rep, T, hd)).view(B, G, rep * T, hd)
            att = att.view(B, H, T, hd)
            att = att.transpose(1, 2).reshape(B, T, H * hd)
            x = x + F.linear(att, lw["o"])
            h = self.rms(x, lw["ln2"])
            x = x + F.linear(F.silu(F.linear(h, lw["gate"])) * F.linear(h, lw["up"]), lw["down"])
        if last_only:
            x = x[:, -1:, :]
        x = self.rms(x, self.norm)
        return F.linear(x, self.lm_head)


def make_adapter(cfg, n_tokens, start_layer, seed, gates_zero=False):
    g = torch.Generator().manual_seed(seed)
    prefix = torch.randn(n_tokens, cfg.hidden, generator=g)
    if gates_zero:
        gates = torch.zeros(cfg.layers - start_layer, cfg.heads)
    else:
        gates = (torch.rand(cfg.layers - start_layer, cfg.heads, generator=g) - 0.5) * 0.2
    return {"prefix": prefix, "gates": gates, "start_layer": start_layer}


# ---- the bench's deterministic inputs, bit-identical to test/bench/bench.ts (mulberry32)

_M = 0xFFFFFFFF


def mulberry32(seed):
    state = [seed & _M]

    def nxt():
        state[0] = (state[0] + 0x6D2B79F5) & _M
        t = state[0]
        t = ((t ^ (t >> 15)) * (t | 1)) & _M
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & _M)) & _M
        return ((t ^ (t >> 14)) & _M) / 4294967296.0

    return nxt


def js_ids(n, vocab, seed):
    """randomIds() of bench.ts: n ids in [3, vocab)."""
    r = mulberry32(seed)
    return [3 + int(math.floor(r() * (vocab - 3))) for _ in range(n)]


def js_adapter(cfg, n_tokens, start_layer, seed):
    """randomAdapter() of bench.ts: prefix ~ N(0,1) (Box-Muller), gates ~ U[-0.1, 0.1]."""
    r = mulberry32(seed)
    prefix = []
    for _ in range(n_tokens * cfg.hidden):
        a = math.sqrt(-2 * math.log(1 - r()))
        prefix.append(a * math.cos(2 * math.pi * r()))
    gates = [(r() - 0.5) * 0.2 for _ in range((cfg.layers - start_layer) * cfg.heads)]
    return {"prefix": torch.tensor(prefix, dtype=torch.float32).view(n_tokens, cfg.hidden),
            "gates": torch.tensor(gates, dtype=torch.float32).view(cfg.layers - start_layer, cfg.heads),
            "start_layer": start_layer}


def rand_ids(rng, shape, vocab):
    return torch.from_numpy(rng.integers(3, vocab, size=shape, dtype=np.int64))


# ---------------------------------------------------------------- BLAS info

def blas_info():
    cfg = torch.__config__.show()
    kinds = []
    for key in ("OpenBLAS", "MKL", "BLAS_INFO=", "reference"):
        if key in cfg:
            kinds.append(key)
    blas_line = ""
    for part in cfg.replace("\n", ",").split(","):
        if "BLAS_INFO" in part:
            blas_line = part.strip()
    loaded = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(p)
                if "blas" in base or "openblas" in p or "mkl" in base:
                    loaded.add(p)
    except OSError:
        pass
    real = sorted({os.path.realpath(p) for p in loaded})
    if any("openblas-pthread" in p for p in real):
        name = "openblas-pthread"
    elif any("openblas-openmp" in p for p in real):
        name = "openblas-openmp"
    elif any("openblas-serial" in p for p in real):
        name = "openblas-serial"
    elif any("mkl" in p for p in real):
        name = "mkl"
    elif any("/blas/" in p for p in real):
        name = "reference-blas"
    else:
        name = "unknown"
    return {"blas": name, "torch_build_blas": blas_line or ",".join(kinds), "blas_libs": real,
            "mkldnn": torch.backends.mkldnn.is_available()}


# ---------------------------------------------------------------- modes

def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def run_mode(args):
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    t0 = time.perf_counter()
    m = Llama(args.model)
    load_s = time.perf_counter() - t0
    c = m.cfg
    rss_after_load = peak_rss_mb()
    log(f"loaded {args.model} in {load_s:.2f}s (rss {rss_after_load:.0f} MB), mode {args.mode}")
    # Same ids and adapter as bench.ts feeds our engine (seeds: adapter 1234, train 99, prefill 7,
    # prompt 11), so the first training loss, the prefill argmax and the greedy ids can be compared.
    adapter = js_adapter(c, args.tokens, args.start_layer, 1234)
    times = []
    extra = {}
    if args.mode == "train":
        B, T = args.batch, args.seq
        prefix = adapter["prefix"].clone().requires_grad_(True)
        gates = adapter["gates"].clone().requires_grad_(True)
        ad = {"prefix": prefix, "gates": gates, "start_layer": args.start_layer}
        opt = torch.optim.AdamW([prefix, gates], lr=9e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.02)
        ids = torch.tensor(js_ids(B * T, c.vocab, 99), dtype=torch.long).view(B, T)
        targets = torch.cat([ids[:, 1:], torch.full((B, 1), -1, dtype=torch.long)], dim=1)  # all scored but last
        losses = []
        for i in range(args.warmup + args.reps):
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            logits = m.forward(ids, ad)
            loss = F.cross_entropy(logits.view(-1, c.vocab), targets.view(-1), ignore_index=-1)
            loss.backward()
            opt.step()
            dt = time.perf_counter() - t
            del logits
            losses.append(float(loss))
            if i >= args.warmup:
                times.append(dt)
            log(f"train step {i} {'(warm-up) ' if i < args.warmup else ''}{dt:.3f}s loss {float(loss):.4f}")
        tokens = B * T
        extra = {"batch": B, "seq": T, "loss_first": losses[0], "loss_last": losses[-1]}
    elif args.mode == "prefill":
        T = args.prefill_len
        ids = torch.tensor(js_ids(T, c.vocab, 7), dtype=torch.long).view(1, T)
        with torch.inference_mode():
            pkv = None
            for i in range(args.warmup + args.reps):
                t = time.perf_counter()
                # Prefix K/V are part of the timed work here (as for a fresh request).
                out = m.forward(ids, adapter, last_only=True)
                dt = time.perf_counter() - t
                if i >= args.warmup:
                    times.append(dt)
                log(f"prefill {i} {'(warm-up) ' if i < args.warmup else ''}{dt:.3f}s")
        tokens = T
        extra = {"prefill_len": T, "argmax": int(torch.argmax(out[0, -1]))}
    elif args.mode == "decode":
        P = args.prompt_len
        prompt = torch.tensor(js_ids(P, c.vocab, 11), dtype=torch.long).view(1, P)

        def gen(n_new):
            cache = [None] * c.layers
            pkv = m.prefix_kv(adapter)  # once per adapter, reused at every step
            logits = m.forward(prompt, adapter, cache=cache, pkv=pkv, last_only=True)
            out = []
            for _ in range(n_new):
                nxt = int(torch.argmax(logits[0, -1]))
                out.append(nxt)
                if len(out) == n_new:
                    break
                logits = m.forward(torch.tensor([[nxt]]), adapter, cache=cache, pkv=pkv)
            return out

        with torch.inference_mode():
            gen(min(8, args.new_tokens))  # warm-up
            for i in range(args.reps):
                t = time.perf_counter()
                out = gen(args.new_tokens)
                dt = time.perf_counter() - t
                times.append(dt)
                log(f"decode {i} {args.new_tokens} tokens {dt:.3f}s")
        tokens = args.new_tokens
        extra = {"prompt_len": P, "new_tokens": args.new_tokens, "ids": out}
    else:
        raise SystemExit(f"unknown mode {args.mode}")
    med = median(times)
    res = {
        "impl": "torch", "model": os.path.basename(os.path.normpath(args.model)), "mode": args.mode,
        "tokens_per_s": tokens / med, "median_s": med, "times_s": times,
        "peak_rss_mb": peak_rss_mb(), "rss_after_load_mb": rss_after_load, "load_s": load_s,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "adapter_tokens": args.tokens, "start_layer": args.start_layer,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_avg_1m": os.getloadavg()[0],
    }
    res.update(extra)
    res.update(blas_info())
    print(json.dumps(res), flush=True)


# ---------------------------------------------------------------- self-check

def selfcheck(args):
    torch.set_num_threads(args.threads)
    ok = True
    report = {"impl": "torch", "selfcheck": True}
    m = Llama(args.model)
    c = m.cfg
    # 1. zero gates == plain Llama forward (random prefix, gates exactly 0)
    rng = np.random.default_rng(0)
    ids = rand_ids(rng, (2, 40), c.vocab)
    za = make_adapter(c, args.tokens, args.start_layer, 1, gates_zero=True)
    with torch.no_grad():
        base = m.forward(ids)
        zg = m.forward(ids, za)
    d0 = float((base - zg).abs().max())
    report["zero_gate_vs_plain_max_abs"] = d0
    ok &= d0 == 0.0

    # 2. KV-cache decode == full recompute (adapter with N=3, non-zero gates)
    a3 = make_adapter(c, 3, args.start_layer, 2)
    with torch.no_grad():
        full = m.forward(ids[:1], a3)
        cache = [None] * c.layers
        pkv = m.prefix_kv(a3)
        parts = [m.forward(ids[:1, :10], a3, cache=cache, pkv=pkv)]
        for t in range(10, ids.shape[1]):
            parts.append(m.forward(ids[:1, t:t + 1], a3, cache=cache, pkv=pkv))
        inc = torch.cat(parts, dim=1)
    dk = float((full - inc).abs().max())
    report["kv_cache_vs_full_max_abs"] = dk
    ok &= dk < 1e-4

    # 3. oracle sft_batch (N=1) and sft_batch_n3 (N=3: exercises the prefix softmax):
    #    loss, grad_prefix, grad_gates, logits, n_targets
    for case_name in ("sft_batch", "sft_batch_n3"):
        path = os.path.join(args.oracle, case_name + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            case = json.load(f)
        inp, exp, tol = case["inputs"], case["expected"], case["tolerances"]
        rep = report[case_name] = {}

        def close(name, a, e):
            a = np.asarray(a, dtype=np.float64)
            e = np.asarray(e, dtype=np.float64)
            t = tol[name]
            err = np.abs(a - e)
            passed = bool(a.shape == e.shape and np.all(err <= t["atol"] + t["rtol"] * np.abs(e)))
            rep[name] = {"pass": passed, "max_abs": float(err.max()),
                         "max_rel": float((err / np.maximum(np.abs(e), 1e-30)).max())}
            return passed

        ad = inp["adapter"]
        prefix = torch.tensor(ad["prefix"], dtype=torch.float32, requires_grad=True)
        gates = torch.tensor(ad["gates"], dtype=torch.float32, requires_grad=True)
        adapter = {"prefix": prefix, "gates": gates, "start_layer": ad["start_layer"]}
        x = torch.tensor(inp["input_ids"], dtype=torch.long)
        labels = torch.tensor(inp["labels"], dtype=torch.long)
        logits = m.forward(x, adapter)
        # labels aligned with input_ids: logits[t] scored against labels[t+1]
        tgt = labels[:, 1:]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, c.vocab), tgt.reshape(-1), ignore_index=-1)
        loss.backward()
        ok &= close("loss", [float(loss)], [exp["loss"]])
        ok &= close("grad_prefix", prefix.grad.numpy(), exp["grad_prefix"])
        ok &= close("grad_gates", gates.grad.numpy(), exp["grad_gates"])
        lg = logits.detach().numpy()
        la, le = [], []
        for b, n in enumerate(inp["lengths"]):
            la.append(lg[b, :n].ravel())
            le.append(np.asarray(exp["logits"][b]).ravel())
        ok &= close("logits", np.concatenate(la), np.concatenate(le))
        n_t = int((tgt != -1).sum())
        rep["n_targets"] = {"pass": n_t == exp["n_targets"], "value": n_t}
        ok &= n_t == exp["n_targets"]
    report["ok"] = bool(ok)
    report.update(blas_info())
    print(json.dumps(report), flush=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "..", "shared", "models", "stories260K"))
    ap.add_argument("--mode", default="all", choices=["train", "prefill", "decode", "all"])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tokens", type=int, default=1, help="Aligner prefix tokens N (bench: 1)")
    ap.add_argument("--start-layer", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prefill-len", type=int, default=512)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--selfcheck", action="store_true")
    ap.add_argument("--oracle", default=os.path.join(HERE, "..", "..", "..", "shared", "oracle"))
    args = ap.parse_args()
    args.model = os.path.abspath(args.model)
    if args.selfcheck:
        sys.exit(selfcheck(args))
    if args.mode == "all":
        # One process per mode so each peak RSS is its own.
        rc = 0
        for mode in ("train", "prefill", "decode"):
            argv = [sys.executable, os.path.abspath(__file__)] + [a for a in sys.argv[1:]]
            argv = [a for a in argv]
            i = argv.index("--mode") if "--mode" in argv else -1
            if i >= 0:
                argv[i + 1] = mode
            else:
                argv += ["--mode", mode]
            rc |= subprocess.call(argv)
        sys.exit(rc)
    run_mode(args)


if __name__ == "__main__":
    main()

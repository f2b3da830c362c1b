"""Parity fixtures for Sources/Sampling (noise schedule, schedule types, samplers, registry).

Made with:  cd compat/reference && /work/refvenv/bin/python gen_sampling.py
Writes only fixtures/sampling/. Needs A1111 v1.10.1 `modules/` (env A1111_MODULES, default /tmp/a1111/modules;
kklouzal/stable-diffusion-webui tag v1.10.1): its sd_schedulers.py, sd_samplers_timesteps_impl.py,
sd_samplers_extra.py and uni_pc.py run unmodified here with a stub `modules.shared` holding the option values;
the sampler/scheduler tables are read from its source with `ast`. k-diffusion is the pinned commit ab527a9
(pip 0.1.1.post1, same files). LCMCompVisDenoiser and CFGDenoiser's combination are restated (their modules
import the whole webui).

The model is an analytic denoiser both sides evaluate identically in float32:
  D(x, s) = x * c1(s) + tanh(x) * c2(s) + m * c3(s),  c1 = 1/(1+s^2), c2 = 0.3 s/(1+s^2), c3 = s^2/(1+s^2)
with a fixed "mean image" m. Step noise (randn_like and SDE noise_sampler alike) comes from one recorded list,
injected the way A1111 injects its generator (k_diffusion.sampling.torch replaced).
brownian.*: torchsde 0.2.6 BrownianTree noise as A1111 creates it (create_noise_sampler: one tree per image seed,
torchsde's _randn replaced by a freshly seeded CPU generator, as modules/sd_samplers_common.py does on CPU); every
seeded normal the trees draw is recorded so the Swift port can be fed the same values.
"""
import ast
import importlib.util
import inspect
import json
import os
import pathlib
import sys
import types

import numpy as np
import torch
from safetensors.torch import save_file

from kdiffusion import sampling, external  # noqa: E402  (k-diffusion without torchvision)

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent.parent / "fixtures" / "sampling"
A1111 = pathlib.Path(os.environ.get("A1111_MODULES", "/tmp/a1111/modules"))

torch.manual_seed(0)
torch.set_num_threads(1)


# ---------------------------------------------------------------- A1111 modules with stubbed shared options
class _Opts:
    beta_dist_alpha = 0.6
    beta_dist_beta = 0.6
    uni_pc_variant = "bh1"
    uni_pc_skip_type = "time_uniform"
    uni_pc_order = 3
    uni_pc_lower_order_final = True


def _package(name):
    mod = types.ModuleType(name)
    mod.__path__ = []
    sys.modules[name] = mod
    return mod


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    parent, _, leaf = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], leaf, mod)
    return mod


modules_pkg = _package("modules")
shared = types.ModuleType("modules.shared")
shared.opts = _Opts()
shared.sd_model = types.SimpleNamespace(is_sdxl=False)
sys.modules["modules.shared"] = shared
modules_pkg.shared = shared
_package("modules.models")
_package("modules.models.diffusion")
_package("modules.models.diffusion.uni_pc")
_load("modules.models.diffusion.uni_pc.uni_pc", A1111 / "models/diffusion/uni_pc/uni_pc.py")
_load("modules.torch_utils", A1111 / "torch_utils.py")
sd_schedulers = _load("modules.sd_schedulers", A1111 / "sd_schedulers.py")
timesteps_impl = _load("modules.sd_samplers_timesteps_impl", A1111 / "sd_samplers_timesteps_impl.py")
samplers_extra = _load("modules.sd_samplers_extra", A1111 / "sd_samplers_extra.py")


# ---------------------------------------------------------------- SD1 schedule as LDM builds it
def sd1_alphas_cumprod():
    betas = (torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2).numpy()
    return torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)


AC = sd1_alphas_cumprod()


class _Inner(torch.nn.Module):
    """Stands in for the LDM model: alphas_cumprod plus an analytic eps 'UNet' for wrapper tests."""

    def __init__(self, ac):
        super().__init__()
        self.alphas_cumprod = ac

    def apply_model(self, x, t, **kwargs):
        return analytic_eps(x, t)


MODEL = external.CompVisDenoiser(_Inner(AC))


# ---------------------------------------------------------------- analytic model
SHAPE = (2, 4, 6, 6)
gen = torch.Generator().manual_seed(1234)
MEAN = torch.randn(SHAPE, generator=gen) * 0.5
MEAN_UNCOND = torch.randn(SHAPE, generator=gen) * 0.5
NOISE0 = torch.randn(SHAPE, generator=gen)
NOISE_LIST = [torch.randn(SHAPE, generator=gen) for _ in range(200)]
LATENT = MEAN * 1.5 + 0.1


def analytic_denoiser(x, sigma, mean=MEAN):
    s = float(sigma.reshape(-1)[0]) if torch.is_tensor(sigma) else float(sigma)
    c1 = 1.0 / (1.0 + s * s)
    c2 = 0.3 * s / (1.0 + s * s)
    c3 = s * s / (1.0 + s * s)
    return x * c1 + torch.tanh(x) * c2 + mean[: x.shape[0]] * c3


def analytic_eps(x, t):
    """eps 'network' for wrapper tests: depends on input and timestep."""
    tt = float(t.reshape(-1)[0]) if torch.is_tensor(t) else float(t)
    return torch.tanh(x) * (0.5 + tt / 2000.0) + MEAN * (tt / 1000.0)


class RecordedNoise:
    def __init__(self):
        self.used = 0

    def next(self):
        if self.used >= len(NOISE_LIST):
            raise RuntimeError("noise list exhausted")
        n = NOISE_LIST[self.used]
        self.used += 1
        return n.clone()


class TorchHijack:
    """As A1111's sd_samplers_common.TorchHijack: randn_like draws from the image generators."""

    def __init__(self, noise):
        self.noise = noise

    def __getattr__(self, item):
        if item == "randn_like":
            return lambda x: self.noise.next()
        return getattr(torch, item)


class KModel:
    """The k-diffusion model callable (x, sigma_batch) -> x0, counting calls."""

    def __init__(self, mean=MEAN):
        self.calls = 0
        self.mean = mean

    def __call__(self, x, sigma, **kwargs):
        self.calls += 1
        return analytic_denoiser(x, sigma, self.mean)


class TimestepEps:
    """A1111's timestep samplers call model(x_vp, t) -> eps. Built from the same x0 denoiser the Swift port
    converts: sigma = t_to_sigma(t), x_ve = x / c_in, eps = (x_ve - D(x_ve, sigma)) / sigma. Optionally with CFG
    (cond/uncond means) the way CFGDenoiser combines, recording last_noise_uncond."""

    def __init__(self, cfg_scale=None):
        self.inner_model = types.SimpleNamespace(inner_model=types.SimpleNamespace(alphas_cumprod=AC))
        self.calls = 0
        self.cfg_scale = cfg_scale
        self.cond_scale_miltiplier = 1.0
        self.need_last_noise_uncond = False
        self.last_noise_uncond = None

    def _eps(self, x, sigma, mean):
        c_in = 1.0 / (sigma * sigma + 1.0) ** 0.5
        x_ve = x / c_in
        return (x_ve - analytic_denoiser(x_ve, sigma, mean)) / sigma

    def __call__(self, x, t, **kwargs):
        self.calls += 1
        tt = torch.as_tensor(t, dtype=torch.float32).reshape(-1)[:1]
        sigma = MODEL.t_to_sigma(tt)[0].float()
        if self.cfg_scale is None:
            return self._eps(x, sigma, MEAN)
        cond = self._eps(x, sigma, MEAN)
        uncond = self._eps(x, sigma, MEAN_UNCOND)
        if self.need_last_noise_uncond:
            self.last_noise_uncond = uncond.clone()
        return uncond + (cond - uncond) * (self.cfg_scale * self.cond_scale_miltiplier)


# ---------------------------------------------------------------- samplers as A1111 calls them
K_SAMPLERS = {  # name -> (function, extra params A1111 passes, options)
    "DPM++ 2M": (sampling.sample_dpmpp_2m, [], {"scheduler": "karras"}),
    "DPM++ SDE": (sampling.sample_dpmpp_sde, ["s_noise"], {"scheduler": "karras", "brownian_noise": True}),
    "DPM++ 2M SDE": (sampling.sample_dpmpp_2m_sde, ["s_noise"], {"scheduler": "exponential", "brownian_noise": True}),
    "DPM++ 2M SDE Heun": (sampling.sample_dpmpp_2m_sde, ["s_noise"],
                          {"scheduler": "exponential", "brownian_noise": True, "solver_type": "heun"}),
    "DPM++ 2S a": (sampling.sample_dpmpp_2s_ancestral, ["s_noise"], {"scheduler": "karras"}),
    "DPM++ 3M SDE": (sampling.sample_dpmpp_3m_sde, ["s_noise"],
                     {"scheduler": "exponential", "discard_next_to_last_sigma": True, "brownian_noise": True}),
    "Euler a": (sampling.sample_euler_ancestral, [], {}),
    "Euler": (sampling.sample_euler, ["s_churn", "s_tmin", "s_tmax", "s_noise"], {}),
    "LMS": (sampling.sample_lms, [], {}),
    "Heun": (sampling.sample_heun, ["s_churn", "s_tmin", "s_tmax", "s_noise"], {}),
    "DPM2": (sampling.sample_dpm_2, ["s_churn", "s_tmin", "s_tmax", "s_noise"],
             {"scheduler": "karras", "discard_next_to_last_sigma": True}),
    "DPM2 a": (sampling.sample_dpm_2_ancestral, ["s_noise"], {"scheduler": "karras", "discard_next_to_last_sigma": True}),
    "DPM fast": (sampling.sample_dpm_fast, ["s_noise"], {}),
    "DPM adaptive": (sampling.sample_dpm_adaptive, [], {}),
    "Restart": (samplers_extra.restart_sampler, [], {"scheduler": "karras"}),
}


def kdiff_sigmas(options, steps, scheduler="Automatic", model=None):
    """KDiffusionSampler.get_sigmas with default options."""
    model = MODEL if model is None else model
    discard = options.get("discard_next_to_last_sigma", False)
    n = steps + (1 if discard else 0)
    name = options.get("scheduler") if scheduler == "Automatic" else scheduler
    sched = sd_schedulers.schedulers_map.get(name)
    if sched is None or sched.function is None:
        sigmas = model.get_sigmas(n)
    else:
        kw = {"sigma_min": model.sigmas[0].item(), "sigma_max": model.sigmas[-1].item()}
        if sched.need_inner_model:
            kw["inner_model"] = model
        sigmas = sched.function(n=n, **kw, device="cpu")
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas.float()


def run_kdiffusion(name, steps, params, scheduler="Automatic", t_enc=None):
    """KDiffusionSampler.sample (t_enc None) or sample_img2img (clean latent LATENT, noise NOISE0)."""
    func, extra, options = K_SAMPLERS[name]
    sigmas = kdiff_sigmas(options, steps, scheduler)
    noise = RecordedNoise()
    sampling.torch = TorchHijack(noise)
    model = KModel()
    kwargs = {}
    if t_enc is None:
        x = NOISE0 * sigmas[0]
    else:
        sigmas = sigmas[steps - t_enc - 1:]
        x = LATENT + NOISE0 * sigmas[0]
        kwargs.update(sigma_min=sigmas[-2], sigma_max=sigmas[0], n=len(sigmas) - 1)
    sig = inspect.signature(func).parameters
    for p in extra:
        if p in sig:
            kwargs[p] = params[p]
    if "eta" in sig:
        kwargs["eta"] = params["eta"]
    if "n" in sig and t_enc is None:
        kwargs["n"] = steps
    if "sigma_min" in sig and t_enc is None:
        kwargs["sigma_min"] = MODEL.sigmas[0].item()
        kwargs["sigma_max"] = MODEL.sigmas[-1].item()
    for k in ("n", "sigma_min", "sigma_max"):
        if k not in sig:
            kwargs.pop(k, None)
    if "sigmas" in sig:
        kwargs["sigmas"] = sigmas
    if options.get("brownian_noise"):
        kwargs["noise_sampler"] = lambda s, sn: noise.next()
    if options.get("solver_type") == "heun":
        kwargs["solver_type"] = "heun"
    steps_seen = []
    out = func(model, x, extra_args={}, disable=True, callback=lambda d: steps_seen.append(int(d["i"])), **kwargs)
    sampling.torch = torch
    return out, sigmas, noise.used, model.calls, len(steps_seen)


def timesteps_for(steps):
    return torch.clip(torch.asarray(list(range(0, 1000, 1000 // steps))) + 1, 0, 999)


def run_timesteps(name, steps, params, t_enc=None, batch=None):
    """CompVisSampler.sample (t_enc None) or sample_img2img (clean latent LATENT, noise NOISE0); `batch` keeps the
    first images only (UniPC's vary_coeff variant only broadcasts for batch size 1 upstream)."""
    noise = RecordedNoise()
    sampling.torch = TorchHijack(noise)
    ts = timesteps_for(steps)
    x = NOISE0.clone() if batch is None else NOISE0[:batch].clone()
    extra = {}
    if t_enc is not None:
        a = AC[ts[t_enc]]
        x = LATENT * torch.sqrt(a) + NOISE0 * torch.sqrt(1 - a)
        ts = ts[:t_enc]
    seen = []
    cb = lambda d: seen.append(int(d["i"]))
    if name == "DDIM":
        model = TimestepEps()
        out = timesteps_impl.ddim(model, x, ts, extra_args={}, callback=cb, disable=True, eta=params["eta_ddim"])
    elif name == "DDIM CFG++":
        model = TimestepEps(cfg_scale=params["cfg_scale"])
        out = timesteps_impl.ddim_cfgpp(model, x, ts, extra_args={}, callback=cb, disable=True,
                                        eta=params["eta_ddim"])
    elif name == "PLMS":
        model = TimestepEps()
        out = timesteps_impl.plms(model, x, ts, extra_args={}, callback=cb, disable=True)
    else:
        model = TimestepEps()
        out = timesteps_impl.unipc(model, x, ts, extra_args={}, callback=cb, disable=True,
                                   is_img2img=t_enc is not None)
    sampling.torch = torch
    return out, ts, noise.used, model.calls, len(seen)


# ---------------------------------------------------------------- LCM (restated from sd_samplers_lcm.py)
class LCMDenoiser(external.DiscreteEpsDDPMDenoiser):
    def __init__(self, inner):
        timesteps, original = 1000, 50
        self.skip_steps = timesteps // original
        valid = torch.zeros(original, dtype=torch.float32)
        for x in range(original):
            valid[original - 1 - x] = inner.alphas_cumprod[timesteps - 1 - x * self.skip_steps]
        super().__init__(inner, valid, quantize=None)

    def get_sigmas(self, n=None):
        start = self.sigma_to_t(self.sigma_max)
        end = self.sigma_to_t(self.sigma_min)
        t = torch.linspace(start, end, n)
        return sampling.append_zero(self.t_to_sigma(t))

    def sigma_to_t(self, sigma, quantize=None):
        log_sigma = sigma.log()
        dists = log_sigma - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape) * self.skip_steps + (self.skip_steps - 1)

    def t_to_sigma(self, timestep):
        t = torch.clamp(((timestep - (self.skip_steps - 1)) / self.skip_steps).float(), min=0, max=(len(self.sigmas) - 1))
        return super().t_to_sigma(t)

    def get_eps(self, *args, **kwargs):
        return self.inner_model.apply_model(*args, **kwargs)

    def get_scaled_out(self, sigma, output, input):
        sigma_data = 0.5
        scaled_timestep = self.sigma_to_t(sigma).reshape(-1, 1, 1, 1) * 10.0
        c_skip = sigma_data ** 2 / (scaled_timestep ** 2 + sigma_data ** 2)
        c_out = scaled_timestep / (scaled_timestep ** 2 + sigma_data ** 2) ** 0.5
        return c_out * output + c_skip * input

    def forward(self, input, sigma, **kwargs):
        c_out, c_in = [x.reshape(-1, 1, 1, 1) for x in self.get_scalings(sigma)]
        eps = self.get_eps(input * c_in, self.sigma_to_t(sigma), **kwargs)
        return self.get_scaled_out(sigma, input + eps * c_out, input)


LCM_MODEL = LCMDenoiser(_Inner(AC))


def sample_lcm(model, x, sigmas, noise):
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * x.new_ones([x.shape[0]]))
        x = denoised
        if sigmas[i + 1] > 0:
            x = x + sigmas[i + 1] * noise.next()
    return x


def run_lcm(steps, scheduler="Automatic", t_enc=None):
    sigmas = kdiff_sigmas({}, steps, scheduler, model=LCM_MODEL).float()
    noise = RecordedNoise()
    model = KModel()
    if t_enc is None:
        x = NOISE0 * sigmas[0]
    else:
        sigmas = sigmas[steps - t_enc - 1:]
        x = LATENT + NOISE0 * sigmas[0]
    out = sample_lcm(model, x, sigmas, noise)
    return out, sigmas, noise.used, model.calls, len(sigmas) - 1


# ---------------------------------------------------------------- torchsde Brownian trees as A1111 seeds them
import torchsde._brownian.brownian_interval as _bi  # noqa: E402

SEEDED = {}


def _recording_randn(size, dtype, device, seed):
    """A1111's replacement (devices.randn_local on CPU): a fresh CPU generator seeded with `seed`."""
    t = torch.randn(size, dtype=dtype, device="cpu", generator=torch.Generator("cpu").manual_seed(int(seed)))
    SEEDED[int(seed)] = t.clone()
    return t


_bi._randn = _recording_randn
BROWNIAN_SEEDS = [1234567, 4000000000]


def brownian_fixture(tensors):
    """Direct noise-sampler queries and the SDE samplers end to end with A1111's create_noise_sampler, on a
    smaller latent (2, 4, 3, 3) to keep the recorded per-seed normals small."""
    mean, noise0 = MEAN[:, :, :3, :3].contiguous(), NOISE0[:, :, :3, :3].contiguous()
    tensors["brownian_mean"], tensors["brownian_noise0"] = mean, noise0
    cases = []
    sigmas = kdiff_sigmas({"scheduler": "karras"}, 9)
    ns = sampling.BrownianTreeNoiseSampler(noise0, sigmas[sigmas > 0].min(), sigmas.max(), seed=BROWNIAN_SEEDS)
    queries = [(sigmas[0], sigmas[1]), (sigmas[1], sigmas[3]), (sigmas[3], sigmas[2]), (sigmas[4], sigmas[8]),
               (sigmas[2], torch.tensor(0.7331))]
    for k, (a, b) in enumerate(queries):
        tensors[f"brownian_query|{k}"] = ns(a, b).float()
        cases.append({"index": k, "sigma": float(a), "sigma_next": float(b)})
    runs = []
    for name, steps in [("DPM++ SDE", 9), ("DPM++ 2M SDE", 9), ("DPM++ 2M SDE Heun", 6), ("DPM++ 3M SDE", 9),
                        ("DPM++ SDE", 4)]:
        func, _, options = K_SAMPLERS[name]
        sig = kdiff_sigmas(options, steps)
        x = noise0 * sig[0]
        noise_sampler = sampling.BrownianTreeNoiseSampler(x, sig[sig > 0].min(), sig.max(), seed=BROWNIAN_SEEDS)
        kwargs = {"solver_type": "heun"} if options.get("solver_type") == "heun" else {}
        out = func(KModel(mean), x, sig, extra_args={}, disable=True, eta=1.0, s_noise=1.0, noise_sampler=noise_sampler,
                   **kwargs)
        key = f"brownian_run|{name}|{steps}"
        tensors[key] = out.float()
        runs.append({"key": key, "sampler": name, "steps": steps, "sigmas": [float(v) for v in sig]})
    for seed, t in SEEDED.items():
        tensors[f"seeded|{seed}"] = t.float()
    seed_sequences = []
    for entropy, spawn in [(1234567, []), (4000000000, [5, 3]), (0, [0, 1]), (2 ** 40 + 7, [123456, 20])]:
        state = np.random.SeedSequence(entropy=entropy, spawn_key=tuple(spawn), pool_size=24).generate_state(4)
        seed_sequences.append({"entropy": entropy, "spawn_key": spawn, "state": [int(v) for v in state]})
    return {"seeds": BROWNIAN_SEEDS, "queries": cases, "runs": runs, "seed_sequences": seed_sequences,
            "recorded_seeds": len(SEEDED)}


# ---------------------------------------------------------------- fixtures
def schedules_fixture():
    cases = []
    for sched in sd_schedulers.schedulers:
        for n in [1, 2, 3, 7, 10, 11, 20, 33]:
            if sched.function is None:
                sig = MODEL.get_sigmas(n)
            else:
                kw = {"sigma_min": MODEL.sigmas[0].item(), "sigma_max": MODEL.sigmas[-1].item()}
                if sched.need_inner_model:
                    kw["inner_model"] = MODEL
                sig = sched.function(n=n, **kw, device="cpu")
            cases.append({"scheduler": sched.name, "steps": n, "sigmas": [float(v) for v in sig.float()]})
    # a non-default rho and the SDXL Align Your Steps table
    for n in [5, 12]:
        sig = sd_schedulers.schedulers_map["karras"].function(n=n, sigma_min=0.1, sigma_max=10.0, rho=3.0, device="cpu")
        cases.append({"scheduler": "karras", "steps": n, "rho": 3.0, "sigma_min": 0.1, "sigma_max": 10.0,
                      "sigmas": [float(v) for v in sig.float()]})
    shared.sd_model.is_sdxl = True
    for n in [6, 11]:
        sig = sd_schedulers.get_align_your_steps_sigmas(n, 0.0, 0.0, "cpu")
        cases.append({"scheduler": "align_your_steps", "steps": n, "sdxl": True, "sigmas": [float(v) for v in sig]})
    shared.sd_model.is_sdxl = False
    lcm = [{"steps": n, "sigmas": [float(v) for v in LCM_MODEL.get_sigmas(n).float()]} for n in [1, 4, 8]]
    probe_sigmas = [0.03, 0.0292, 0.1, 0.5, 1.0, 2.5, 7.0, 14.6]
    probe_t = [0.0, 0.5, 1.0, 17.25, 500.0, 750.75, 998.5, 999.0]
    return {
        "sigma_min": MODEL.sigmas[0].item(), "sigma_max": MODEL.sigmas[-1].item(),
        "cases": cases, "lcm": lcm,
        "lcm_sigma_min": LCM_MODEL.sigmas[0].item(), "lcm_sigma_max": LCM_MODEL.sigmas[-1].item(),
        "sigma_to_t": [[s, MODEL.sigma_to_t(torch.tensor(s)).item()] for s in probe_sigmas],
        "t_to_sigma": [[t, MODEL.t_to_sigma(torch.tensor(t)).item()] for t in probe_t],
        "lcm_sigma_to_t": [[s, float(LCM_MODEL.sigma_to_t(torch.tensor([s]))[0])] for s in probe_sigmas],
    }


def registry_fixture():
    def literal(node):
        try:
            return ast.literal_eval(node)
        except ValueError:
            return ast.unparse(node)

    samplers = []
    for fname, var in [("sd_samplers_kdiffusion.py", "samplers_k_diffusion"),
                       ("sd_samplers_timesteps.py", "samplers_timesteps"), ("sd_samplers_lcm.py", "samplers_lcm")]:
        tree = ast.parse((A1111 / fname).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == var for t in node.targets):
                for elt in node.value.elts:
                    name, _, aliases, options = [literal(e) for e in elt.elts]
                    samplers.append({"name": name, "aliases": aliases,
                                     "options": {k: str(v) for k, v in options.items()}})
    # A1111's get_sampler_and_scheduler, its source run over these tables
    tree = ast.parse((A1111 / "sd_samplers.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_sampler_and_scheduler")
    fn.decorator_list = []
    data = [types.SimpleNamespace(name=s["name"], options=s["options"]) for s in samplers]
    scope = {"samplers": data, "all_samplers_map": {x.name: x for x in data}, "sd_schedulers": sd_schedulers}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "sd_samplers.py", "exec"), scope)
    resolve = scope["get_sampler_and_scheduler"]
    probes = [(None, None), ("", ""), ("Euler a", None), ("Euler a", "Karras"), ("DPM++ 2M", "Karras"),
              ("DPM++ 2M", "karras"), ("DPM++ 2M Karras", None), ("DPM++ 2M Karras", "Exponential"),
              ("DPM++ 2M SDE Exponential", None), ("DPM++ 2M SDE Karras", None), ("Euler SGM Uniform", None),
              ("Euler SGMUniform", None), ("DPM++ 2M SGM Uniform", None), ("k_euler_a", None), ("euler a", None),
              ("Euler", "Bogus"), ("Euler", "automatic"), ("DDIM", "Karras"), ("DPM2 a Karras", None),
              ("DPM++ 3M SDE", "exponential"), ("LCM", "Simple"), ("Restart Karras", None), ("UniPC Uniform", None)]
    resolutions = []
    for name, sched in probes:
        for convert in (True, False):
            got = resolve(name, sched, convert_automatic=convert)
            resolutions.append({"sampler": name, "scheduler": sched, "convert_automatic": convert,
                                "result": list(got)})
    schedulers = [{"name": s.name, "label": s.label, "aliases": s.aliases, "default_rho": s.default_rho,
                   "need_inner_model": s.need_inner_model} for s in sd_schedulers.schedulers]
    return {"samplers": samplers, "schedulers": schedulers, "resolutions": resolutions}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    brownian_tensors = {}
    brownian = brownian_fixture(brownian_tensors)
    (OUT / "brownian.json").write_text(json.dumps(brownian, indent=1))
    save_file({k: v.contiguous() for k, v in brownian_tensors.items()}, str(OUT / "brownian.safetensors"))
    (OUT / "schedules.json").write_text(json.dumps(schedules_fixture(), indent=1))
    (OUT / "registry.json").write_text(json.dumps(registry_fixture(), indent=1))

    tensors = {"mean": MEAN, "mean_uncond": MEAN_UNCOND, "noise0": NOISE0, "latent": LATENT,
               "noise_list": torch.stack(NOISE_LIST[:160])}
    runs = []
    default = {"eta": 1.0, "s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0,
               "eta_ddim": 0.0, "cfg_scale": 7.0}
    varied = {"eta": 0.6, "s_churn": 0.8, "s_tmin": 0.2, "s_tmax": 8.0, "s_noise": 0.95,
              "eta_ddim": 0.4, "cfg_scale": 5.0}
    for name in list(K_SAMPLERS) + ["DDIM", "DDIM CFG++", "PLMS", "UniPC", "LCM"]:
        step_counts = [4, 9, 21] if name != "Restart" else [6, 21, 40]
        for steps in step_counts:
            for label, params in [("default", default), ("varied", varied)]:
                if label == "varied" and steps != step_counts[1]:
                    continue
                if name in ("DDIM", "DDIM CFG++", "PLMS", "UniPC"):
                    out, sched, used, calls, ncb = run_timesteps(name, steps, params)
                elif name == "LCM":
                    out, sched, used, calls, ncb = run_lcm(steps)
                else:
                    out, sched, used, calls, ncb = run_kdiffusion(name, steps, params)
                key = f"{name}|{steps}|{label}"
                tensors[key] = out.float().contiguous()
                runs.append({"key": key, "sampler": name, "steps": steps, "params": label, "noise_used": used,
                             "model_calls": calls, "callbacks": ncb, "scheduler": "Automatic",
                             "schedule": [float(v) for v in sched]})
    # other schedule types through the samplers, and img2img (the hires-fix path)
    extra_runs = [("Euler", 9, "karras", None), ("DPM++ 2M", 9, "kl_optimal", None), ("Heun", 7, "ddim", None),
                  ("DPM++ 2M SDE", 9, "beta", None), ("LMS", 8, "sgm_uniform", None), ("LCM", 5, "karras", None),
                  ("DPM2 a", 8, "align_your_steps", None), ("Euler a", 12, "simple", None),
                  ("Euler a", 10, "Automatic", 6), ("DPM++ 2M", 10, "Automatic", 6), ("DPM fast", 10, "Automatic", 6),
                  ("DPM++ 3M SDE", 10, "Automatic", 6), ("DDIM", 10, "Automatic", 6), ("PLMS", 10, "Automatic", 6),
                  ("UniPC", 20, "Automatic", 12), ("LCM", 10, "Automatic", 6), ("Restart", 25, "Automatic", 22)]
    for name, steps, scheduler, t_enc in extra_runs:
        params = default
        if name in ("DDIM", "DDIM CFG++", "PLMS", "UniPC"):
            out, sched, used, calls, ncb = run_timesteps(name, steps, params, t_enc=t_enc)
        elif name == "LCM":
            out, sched, used, calls, ncb = run_lcm(steps, scheduler, t_enc=t_enc)
        else:
            out, sched, used, calls, ncb = run_kdiffusion(name, steps, params, scheduler, t_enc=t_enc)
        key = f"{name}|{steps}|{scheduler}|{'txt2img' if t_enc is None else f'img2img{t_enc}'}"
        tensors[key] = out.float().contiguous()
        runs.append({"key": key, "sampler": name, "steps": steps, "params": "default", "noise_used": used,
                     "model_calls": calls, "callbacks": ncb, "scheduler": scheduler, "t_enc": t_enc,
                     "schedule": [float(v) for v in sched]})
    # UniPC options (uni_pc_variant, uni_pc_skip_type, uni_pc_order, uni_pc_lower_order_final)
    for variant, skip, order, lower_final, steps in [("bh2", "time_uniform", 3, True, 9),
                                                     ("vary_coeff", "time_uniform", 3, True, 9),
                                                     ("vary_coeff", "logSNR", 2, False, 7),
                                                     ("bh1", "logSNR", 2, True, 7),
                                                     ("bh1", "time_quadratic", 4, False, 12),
                                                     ("bh2", "time_uniform", 1, True, 5)]:
        opts = shared.opts
        opts.uni_pc_variant, opts.uni_pc_skip_type, opts.uni_pc_order, opts.uni_pc_lower_order_final = \
            variant, skip, order, lower_final
        batch = 1 if variant == "vary_coeff" else None
        out, sched, used, calls, ncb = run_timesteps("UniPC", steps, default, batch=batch)
        opts.uni_pc_variant, opts.uni_pc_skip_type, opts.uni_pc_order, opts.uni_pc_lower_order_final = \
            "bh1", "time_uniform", 3, True
        key = f"UniPC|{steps}|{variant},{skip},{order},{lower_final}"
        tensors[key] = out.float().contiguous()
        runs.append({"key": key, "sampler": "UniPC", "steps": steps, "params": "default", "noise_used": used,
                     "model_calls": calls, "callbacks": ncb, "scheduler": "Automatic",
                     "batch": batch, "unipc": {"variant": variant, "skip_type": skip, "order": order, "lower_order_final": lower_final},
                     "schedule": [float(v) for v in sched]})
    # wrappers: k-diffusion CompVisDenoiser and the LCM denoiser over the analytic eps network
    wrappers = []
    for i, s in enumerate([0.05, 0.7, 3.3, 14.0]):
        x = NOISE_LIST[150 + i] * (1 + s)
        tensors[f"wrap_in|{i}"] = x
        tensors[f"wrap_compvis|{i}"] = MODEL(x, torch.full((SHAPE[0],), s))
        tensors[f"wrap_lcm|{i}"] = LCM_MODEL(x, torch.full((SHAPE[0],), s))
        wrappers.append({"index": i, "sigma": s})
    meta = {"shape": list(SHAPE), "params": {"default": default, "varied": varied}, "runs": runs, "wrappers": wrappers}
    (OUT / "samplers.json").write_text(json.dumps(meta, indent=1).replace("Infinity", "1e30"))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT / "samplers.safetensors"))
    print(f"wrote {len(runs)} sampler runs, {len(tensors)} tensors to {OUT}")


if __name__ == "__main__":
    main()

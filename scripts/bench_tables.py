"""Render the measured-figure tables of README.md and docs/*.md from the committed docs/bench/*.json.

A table lives between ``<!-- bench:NAME -->`` and ``<!-- /bench -->`` and is generated, never typed:
``python scripts/bench_tables.py`` rewrites every such block from its JSON, ``--check`` exits 1 when a
block differs from what its JSON renders (``tests/test_docs.py`` runs the check), so a figure in the
docs is always the figure in the JSON beside it, with its machine, date and load.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "docs" / "bench"
BLOCK = re.compile(r"(<!-- bench:([\w-]+) -->\n)(.*?)(<!-- /bench -->)", re.S)
NAMES = {
    "fasterpose_r50_256x192": "FasterPose-R50",
    "simplebaseline_r50_256x192": "SimpleBaseline-R50",
    "lpn50_256x192": "LPN lpn-50",
    "fasterpose_lpn50_256x192": "FasterPose lpn-50",
    "litehrnet18_256x192": "Lite-HRNet-18",
}
RUNTIMES = {
    ("onnxruntime", "fp32"): "ONNX Runtime",
    ("openvino", "fp32"): "OpenVINO f32",
    ("openvino", "bf16"): "OpenVINO bf16",
    ("torch", "fp32"): "torch eager",
    ("onnxruntime", "int8"): "ONNX Runtime int8",
    ("openvino", "int8"): "OpenVINO int8",
    ("onnxruntime-int8", "int8"): "ONNX Runtime int8",
    ("openvino-int8", "int8"): "OpenVINO int8",
    ("openvino-bf16", "bf16"): "OpenVINO bf16",
}


def load(name: str) -> dict[str, Any]:
    return json.loads((BENCH / name).read_text())


def caption(report: dict[str, Any], json_name: str, link_prefix: str) -> str:
    """Machine, date, load and command of one JSON, as the line under its table."""
    p = report["provenance"]
    m = p["machine"]
    flags = ", ".join(m["flags"]) or "none of the listed"
    load_ = f"load average {p['load_average_start']} at the start, {p.get('load_average_end')} at the end"
    return (
        f"Measured {p['date']} on {m['cpu']} (x86 family {m['family']}, {m['cores']} cores; flags: {flags}), "
        f"{load_}, commit {p['commit']}: `{p['command']}`. JSON: [{json_name}]({link_prefix}{json_name})."
    )


def machine(report: dict[str, Any]) -> str:
    """``amx: Intel(R) Xeon(R) Processor, family 6``: the CPU class a figure was measured on, first."""
    from fasterpose.bench.provenance import cpu_class

    m = report["provenance"]["machine"]
    return f"{m.get('class') or cpu_class(m['flags'])}: {m['cpu']}, family {m['family']}"


def ratios_shown(report: dict[str, Any]) -> bool:
    """A floor ratio is shown only when the peak was timed in the rows' own rounds (bench/latency.py)."""
    from fasterpose.bench.latency import ratios_comparable

    return ratios_comparable(report)


def ms(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def latency_table(json_name: str, prefix: str) -> str:
    r = load(json_name)
    rows = r["rows"]
    cols = list(dict.fromkeys((x["runtime"], x["precision"]) for x in rows))
    batches = sorted({x["batch"] for x in rows})
    by = {(x["config"], x["runtime"], x["precision"], x["batch"]): x for x in rows}
    head = " / ".join(f"b{b}" for b in batches)
    out = [
        "| model | true GMACs | "
        + " | ".join(f"{RUNTIMES.get(c, '-'.join(c))}: {head} ms" for c in cols)
        + f" | best at b{batches[-1]} / floor |",
        "| --- | ---: | " + " | ".join("---:" for _ in cols) + " | ---: |",
    ]
    for cfg in dict.fromkeys(x["config"] for x in rows):
        cells, gmacs, ratios = [], None, []
        for c in cols:
            got = [by.get((cfg, *c, b)) for b in batches]
            cells.append(" / ".join(ms(g["ms_median"]) if g else "-" for g in got))
            gmacs = next((g["gmacs"] for g in got if g), gmacs)
            if got[-1] and c[1] == "fp32":
                ratios.append(got[-1]["ratio"])
        best = f"{min(ratios):.2f}" if ratios and ratios_shown(r) else "-"
        out.append(f"| {NAMES.get(cfg, cfg)} | {gmacs:.3f} | " + " | ".join(cells) + f" | {best} |")
    kernels = r.get("peak_kernel", {})
    peaks = ", ".join(
        f"{k} {v:.0f}" + (f" ({kernels[k]})" if k in kernels else "") for k, v in r["peak_gflops"].items()
    )
    skipped = "; ".join(str(s) for s in r.get("skipped", [])) or "none"
    if ratios_shown(r):
        held = (
            f"no row below {r['floor_limit']}x its floor"
            if not r["floor_violations"]
            else (f"**below {r['floor_limit']}x its floor: {'; '.join(r['floor_violations'])}**")
        )
        note = f"peak timed in the same rounds as the rows; {held}"
    else:
        note = "**floor ratio not shown**: this peak was measured apart from the rows (torch kernels only)"
    return "\n".join(out) + (
        f"\n\nMachine class {machine(r)}. Medians of {r['runs']} interleaved rounds, {r['threads']} threads, "
        f"{r.get('weights', 'random')} weights. Floor = true MACs x 2 x batch / peak; peak GFLOP/s: {peaks}; "
        f"{note}. Skipped: {skipped}.\n" + caption(r, json_name, prefix)
    )


def comparisons_table(json_names: list[str], prefix: str) -> str:
    """FasterPose / SimpleBaseline latency ratios of each JSON (one per machine class), beside the
    ratio of their true MACs (what equal speed per multiply-add would give)."""
    out = [
        "| machine | model / versus | runtime | batch | latency ratio | true-MAC ratio |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    caps = []
    for json_name in json_names:
        r = load(json_name)
        gmacs = {x["config"]: x["gmacs"] for x in r["rows"]}
        for c in r["comparisons"]:
            if c["versus"] != "simplebaseline_r50_256x192":
                continue
            mac = c.get("mac_ratio", round(gmacs[c["config"]] / gmacs[c["versus"]], 3))
            out.append(
                f"| {machine(r).split(':')[0]} | {NAMES.get(c['config'], c['config'])} / "
                f"{NAMES.get(c['versus'], c['versus'])} | {c['runtime']} | {c['batch']} | "
                f"{c['latency_ratio']:.3f} | {mac:.3f} |"
            )
        caps.append(f"{machine(r).split(':')[0]}: " + caption(r, json_name, prefix))
    return "\n".join(out) + "\n\n" + "\n".join(caps)


def deploy_ap_table(json_name: str, prefix: str) -> str:
    r = load(json_name)
    out = ["| model file | runtime | precision | AP | AP - checkpoint |", "| --- | --- | --- | ---: | ---: |"]
    for row in r["rows"]:
        if "AP" not in row:
            out.append(f"| {row['model']} | {row['runtime']} | {row['precision']} | not measured: {row['skipped']} | |")
            continue
        diff = f"{row['AP_minus_checkpoint']:+.4f}" if "AP_minus_checkpoint" in row else ""
        out.append(
            f"| {row['model']} (`{row.get('file', '')}`) | {row['runtime']} | {row['precision']} | "
            f"{row['AP']:.4f} | {diff} |"
        )
    return "\n".join(out) + "\n\n" + caption(r, json_name, prefix)


def runtime_choice_table(json_names: list[str], prefix: str) -> str:
    """One row per CPU class and batch: ONNX Runtime vs OpenVINO fp32 (OpenVINO bf16 beside, for information)."""
    out = [
        "| CPU class | batch | ONNX Runtime ms | OpenVINO f32 ms | faster | lead | OpenVINO bf16 ms |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    notes = []
    for json_name in json_names:
        r = load(json_name)
        d = r["decision"]
        bf16 = {str(x["batch"]): x["ms_median"] for x in r["rows"] if x["precision"] == "bf16"}
        cls = machine(r).split(":")[0]
        for b, row in d["per_batch"].items():
            out.append(
                f"| {cls} | {b} | {ms(row['onnxruntime'])} | {ms(row['openvino'])} | {row['faster']} | "
                f"{100 * row['lead']:.1f}% | {ms(bf16[b]) if b in bf16 else 'no bf16'} |"
            )
        verdict = "a tie (kept the default)" if d["tie"] else f"{d['fastest']} ahead"
        notes.append(
            f"{cls}: {verdict}, lead {100 * d['lead']:.1f}% (tolerance {100 * d['tolerance']:.0f}%): "
            f"**`auto` = {d['auto']}**. Medians of {r['runs']} interleaved rounds on {r.get('weights', '')} "
            f"weights. " + caption(r, json_name, prefix)
        )
    return "\n".join(out) + "\n\n" + "\n\n".join(notes)


def train_table(json_names: list[str], prefix: str) -> str:
    out = [
        "| memory format | FP-R50 samples/s | SB-R50 samples/s | FP / SB (median of rounds, min-max) |",
        "| --- | ---: | ---: | --- |",
    ]
    caps = []
    for name in json_names:
        r = load(name)
        fmt = "NHWC (channels-last)" if r["channels_last"] else "NCHW"
        s = r["speedup_per_round"]
        out.append(
            f"| {fmt} | {r['FP-R50']['samples_per_s']:.2f} | {r['SB-R50']['samples_per_s']:.2f} | "
            f"**{r['speedup_FP_over_SB']:.2f}x** ({s['min']:.2f}-{s['max']:.2f}) |"
        )
        caps.append(caption(r, name, prefix))
    r0 = load(json_names[0])
    return "\n".join(out) + (
        f"\n\nBatch {r0['batch']}, {r0['iters']} interleaved iterations per model, {r0['threads']} threads, fp32, "
        "random 256x192 crops, forward + loss + backward + Adam.\n" + "\n".join(caps)
    )


def predict_overhead_table(json_name: str, prefix: str) -> str:
    r = load(json_name)
    m = r["ms_median"]
    return (
        "| read + decode | crop + normalise | model | decode + back-project | overhead / model |\n"
        "| ---: | ---: | ---: | ---: | ---: |\n"
        f"| {m['read']:.1f} ms | {m['crop']:.1f} ms | {ms(m['model'])} ms | {m['post']:.1f} ms | "
        f"**{100 * r['overhead_ratio']:.1f}%** |\n\n"
        f"{r['config']}, runtime {r['runtime']}, {r['boxes']} people in {r['image']} ({r['image_hw'][1]}x"
        f"{r['image_hw'][0]}), medians of {r['runs']} rounds, {r['threads']} threads.\n" + caption(r, json_name, prefix)
    )


PIPELINE_CLASSES = {"avx2": "", "amx": "_amx"}  # JSON name suffix per machine class measured


def _pipeline_figures(suffix: str) -> list[tuple[str, bool | None]] | None:
    """(figure, target met) for the three pipeline rows from one class's JSONs (None: not measured)."""
    if not (BENCH / f"eval_nms{suffix}.json").is_file():
        return None
    data, syn = load(f"data_pipeline{suffix}.json"), load(f"synthpose_generation{suffix}.json")
    nms = load(f"eval_nms{suffix}.json")
    coco = data["coco_mini_train"]
    coco_cell = (
        f"{coco['samples_per_second_per_core']:.0f}"
        if "samples_per_second_per_core" in coco
        else f"not measured ({coco.get('skipped')})"
    )
    syn_rate = syn["images_per_second_per_core"]
    slow = max(nms["oks_nms_ms"]["100"], nms["oks_nms_ms_mostly_distinct"]["100"])
    return [
        (coco_cell, coco.get("meets_target")),
        (f"{syn_rate:.0f}", syn_rate >= 100),
        (
            f"{nms['oks_nms_ms']['100']:.2f} / {nms['oks_nms_ms_mostly_distinct']['100']:.2f} ms",
            slow < nms["target_ms_100_people"],
        ),
    ]


def pipeline_table(prefix: str) -> str:
    """The three pipeline figures per machine class, each class's JSONs and captions beside."""
    what = [
        ("training samples/s/core, 256x192, full augmentation + encoding, JPEG decode (coco_mini train)", ">= 200"),
        ("SynthPose generation, images/s/core", ">= 100"),
        ("OKS-NMS, 100 people in one image (clustered / mostly distinct)", "< 5.0 ms"),
    ]
    names = ("data_pipeline", "synthpose_generation", "eval_nms")
    measured = {cls: figs for cls, s in PIPELINE_CLASSES.items() if (figs := _pipeline_figures(s)) is not None}
    verdict = {True: "met", False: "**not met**", None: "-"}
    out = [
        "| what | target | " + "".join(f"{c} | | " for c in measured) + "JSON |",
        "| --- | ---: | " + "".join("---: | --- | " for _ in measured) + "--- |",
    ]
    for i, (label, target) in enumerate(what):
        cells = " | ".join(f"{figs[i][0]} | {verdict[figs[i][1]]}" for figs in measured.values())
        links = ", ".join(
            f"[{names[i]}{PIPELINE_CLASSES[c]}.json]({prefix}{names[i]}{PIPELINE_CLASSES[c]}.json)" for c in measured
        )
        out.append(f"| {label} | {target} | {cells} | {links} |")
    caps = []
    for c in measured:
        for n in names:
            name = f"{n}{PIPELINE_CLASSES[c]}.json"
            caps.append(f"{c}, {n}: " + caption(load(name), name, prefix))
    return "\n".join(out) + "\n\n" + "\n".join(caps)


def quickstart_table(json_name: str, prefix: str) -> str:
    r = load(json_name)
    out = [
        "| run | date | commit | setup | SynthPose val AP | training steps | command wall time | load average |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for i, run in enumerate(r["runs"], 1):
        la = run.get("load_average")
        load_ = f"{la[0]} -> {la[1]}" if la else "quiet (not recorded)"
        out.append(
            f"| {i} | {run['date']} | {run['commit']} | {run['setup']} | {run['AP']:.3f} | "
            f"{run['metrics'].get('steps', '-')} | {run['wall_s_command']:.0f} s | {load_} |"
        )
    aps = [run["AP"] for run in r["runs"]]
    m = r["provenance"]["machine"]
    return "\n".join(out) + (
        f"\n\n**AP {min(aps):.3f}-{max(aps):.3f} over {len(aps)} fresh-clone runs** on {m['cpu']} (x86 family "
        f"{m['family']}, {m['cores']} cores; flags: {', '.join(m['flags'])}), float32 training (no native bf16 on "
        f"this CPU), 5-minute training budget. JSON: [{json_name}]({prefix}{json_name})."
    )


QUICKSTART_CLASSES = ("avx512_bf16_amx", "avx512_bf16", "avx512", "avx2")


def quickstart_fixed_table(prefix: str) -> str:
    """One row per run of the fixed-schedule quickstart, from docs/bench/quickstart_<class>.json of each class."""
    out = [
        "| machine class | date | commit | setup | precision, threads | steps | SynthPose val AP (last.pth) "
        "| best.pth AP | command wall time | load average |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    caps = []
    for klass in QUICKSTART_CLASSES:
        name = f"quickstart_{klass}.json"
        if not (BENCH / name).is_file():
            continue
        r = load(name)
        for run in r["runs"]:
            la, best = run["load_average"], run["metrics"]["best"]
            out.append(
                f"| {klass} | {run['date']} | {run['commit']} | {run['setup']} | {run['precision']}, "
                f"{run['threads']} | {run['steps']} of {run['steps_planned']} | **{run['AP']:.3f}** | "
                f"{best['AP']:.3f} (epoch {best['epoch']}) | {run['wall_s_command'] / 60:.1f} min | "
                f"{la[0]} -> {la[1]} |"
            )
        m = r["provenance"]["machine"]
        caps.append(
            f"{klass}: {m['cpu']} (x86 family {m['family']}, {m['cores']} cores; flags: "
            f"{', '.join(m['flags'])}), `{r['provenance']['command']}`. "
            f"JSON: [{name}]({prefix}{name})."
        )
    return "\n".join(out) + "\n\n" + "\n".join(caps)


RUNS_WHAT = {
    "runtime": "`Predictor`, `fasterpose predict` and `fasterpose eval --model` on exported `.onnx` / `.xml` files",
    "train,deploy": "everything: training, checkpoints, export, INT8 quantisation, benchmarks",
}


def install_table(json_name: str, prefix: str) -> str:
    r = load(json_name)
    out = ["| install | what it runs | venv size | largest packages (MiB) |", "| --- | --- | ---: | --- |"]
    for row in r["installs"]:
        name = row["install"].split("[", 1)[1].rstrip(']"')
        big = ", ".join(f"{k} {v:.0f}" for k, v in row["largest_packages_mib"].items())
        torch_note = "" if row["torch_installed"] else "; **no torch**"
        size = f"**{row['venv_mib'] / 1024:.2f} GiB**"
        out.append(f"| `{row['install']}`{torch_note} | {RUNS_WHAT.get(name, '')} | {size} | {big} |")
    return "\n".join(out) + f"\n\nPython {r['python']}, fresh venvs. " + caption(r, json_name, prefix)


TABLES: dict[str, Callable[[str], str]] = {
    "install": lambda p: install_table("install_size.json", p),
    "quickstart": lambda p: quickstart_table("quickstart_fresh_clone.json", p),
    "quickstart-fixed": quickstart_fixed_table,
    "latency": lambda p: latency_table("latency_5rows.json", p),
    "latency-amx": lambda p: latency_table("latency_r50_amx.json", p),
    "latency-ratios": lambda p: comparisons_table(["latency_5rows.json", "latency_r50_amx.json"], p),
    "latency-int8": lambda p: latency_table("latency_int8.json", p),
    "deploy-ap": lambda p: deploy_ap_table("deploy_ap_quickstart.json", p),
    "runtime-choice": lambda p: runtime_choice_table(["runtime_choice_avx2.json", "runtime_choice_amx.json"], p),
    "train": lambda p: train_table(["train_fp32_nhwc_b16.json", "train_fp32_nchw_b16.json"], p),
    "predict-overhead": lambda p: predict_overhead_table("predict_overhead.json", p),
    "pipeline": pipeline_table,
}


def render(text: str, prefix: str) -> str:
    """``text`` with every bench block regenerated (a relative link prefix to docs/bench/)."""

    def one(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown bench table {name!r}; known: {', '.join(TABLES)}")
        return f"{m.group(1)}{TABLES[name](prefix)}\n{m.group(4)}"

    return BLOCK.sub(one, text)


def doc_files(root: Path = ROOT) -> dict[Path, str]:
    """README.md and docs/*.md with the link prefix from each to docs/bench/."""
    files = {root / "README.md": "docs/bench/"}
    files.update({p: "bench/" for p in sorted((root / "docs").glob("*.md"))})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a block differs from its JSON")
    args = parser.parse_args(argv)
    stale = []
    for path, prefix in doc_files().items():
        text = path.read_text()
        new = render(text, prefix)
        if new != text:
            if args.check:
                stale.append(str(path.relative_to(ROOT)))
            else:
                path.write_text(new)
                print(f"rewrote {path.relative_to(ROOT)}")
    if stale:
        print(
            "bench tables differ from docs/bench/*.json in: "
            + ", ".join(stale)
            + " (run python scripts/bench_tables.py)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

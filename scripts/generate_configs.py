"""Write the paper-row configs in configs/ (Tables 2, 4, 5, 6) and the SynthPose study's arms in configs/study.

Each file is complete (no inheritance).

Run from the repository root: ``python scripts/generate_configs.py``. The files are committed; this
script documents how they were made and keeps the rows consistent.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """\
# {title}
# {note}
name: {name}
model:
  backbone: {backbone}
  pretrained: true        # ImageNet init; offline without model.weights it warns and starts from random
  weights: null           # or a local torchvision/timm ResNet state dict
  head: {head}
  num_deconv: {num_deconv}
  deconv_filters: 256
  deconv_kernel: 4
  final_layer: {final_layer}
  heatmap_stride: 4
  feature_index: -1
  num_keypoints: {k}
  prior: 0.01             # sigmoid prior for the final bias (sigmoid losses only)
data:
  dataset: {dataset}
  root: {root}
  train_ann: {train_ann}
  train_images: {train_images}
  val_ann: {val_ann}
  val_images: {val_images}
  det_file: {det_file}
  test_ann: {test_ann}    # `eval --split test-dev`: image-info file, its images, detections
  test_images: {test_images}
  test_det_file: {test_det_file}
  det_score_threshold: 0.0
  keypoints: {keypoints}
  input_size: [{iw}, {ih}]      # (W, H)
  heatmap_size: [{hw}, {hh}]    # (w, h) = input_size / model.heatmap_stride
  box_padding: 1.25       # crop = person box enlarged 1.25x (training and inference)
  sigma: {sigma}
  encoding: msra
  use_joint_weights: false
  augment:
    scale_factor: {scale_factor}
    rotation_factor: {rotation_factor}
    rotation_prob: 0.6
    flip: true
    half_body_prob: {half_body}
    half_body_min_joints: 8
  skip_bad_images: false
  num_workers: 4
  image_cache: none        # disk: decode each image once, read it back as a memory map (GPU training)
loss:
  name: {loss}
  alpha: 0.7
  gamma: 1.0
  positive_threshold: 0.01   # positive pixel (alpha, CE mask): t >= 0.01 gives Table 1's 113 / 261 positives
  ce_weighted: false         # CE: plain (Eq. 1); true weights positives/negatives alpha / 1 - alpha
train:
  epochs: 140
  batch_size: 32          # per process: 4 processes give the paper's global batch of 128
  optimizer: adam
  lr: 0.001
  weight_decay: 0.0
  lr_steps: [90, 120]
  lr_factor: 0.1
  warmup_iters: 0
  grad_clip: null
  amp: true               # autocast on CUDA only
  amp_dtype: bfloat16     # float16 adds a GradScaler (GPUs without bf16)
  channels_last: true     # NHWC: faster oneDNN convolutions on CPU (FP-R50 training 1.2x, scripts/bench_train.py)
  cpu_amp: false          # true: bf16 autocast where the CPU has native bf16 (about 2x faster there, not exact fp32)
  sync_bn: false
  seed: 0
  eval_every: 10
  checkpoint_every: 1
  out_dir: runs/{name}
  max_minutes: null
  log_every: 50
  device: auto
eval:
  batch_size: 64
  flip_test: true
  dark: false
  use_gt_boxes: {use_gt_boxes}
  in_vis_threshold: 0.2
  oks_nms_threshold: 0.9
  max_images: null
"""

COCO = dict(
    dataset="coco",
    root="data/coco",
    train_ann="annotations/person_keypoints_train2017.json",
    train_images="train2017",
    val_ann="annotations/person_keypoints_val2017.json",
    val_images="val2017",
    det_file="person_detection_results/COCO_val2017_detections_AP_H_56_person.json",
    test_ann="annotations/image_info_test-dev2017.json",
    test_images="test2017",
    test_det_file="person_detection_results/COCO_test-dev2017_detections_AP_H_609_person.json",
    keypoints="coco17",
    k=17,
    scale_factor=0.35,
    rotation_factor=45,
    half_body=0.3,
    use_gt_boxes="false",
)
MPII = dict(
    dataset="mpii",
    root="data/mpii",
    train_ann="annot/train.json",
    train_images="images",
    val_ann="annot/valid.json",
    val_images="images",
    det_file="null",
    test_ann="null",
    test_images="images",
    test_det_file="null",
    keypoints="mpii16",
    k=16,
    scale_factor=0.25,
    rotation_factor=30,
    half_body=0.0,
    use_gt_boxes="true",
)
DEPTH = {"r50": "resnet50", "r101": "resnet101", "r152": "resnet152"}


def write(out: Path, name: str, title: str, note: str, **kw: object) -> None:
    (out / f"{name}.yaml").write_text(TEMPLATE.format(name=name, title=title, note=note, **kw))


def main() -> None:
    out = Path("configs")
    out.mkdir(exist_ok=True)
    heads = {
        "fasterpose": dict(head="lhr", num_deconv=0, final_layer="conv", loss="rce"),
        "simplebaseline": dict(head="deconv", num_deconv=3, final_layer="conv", loss="mse"),
    }
    sizes = {"256x192": (192, 256, 48, 64, 2.0), "384x288": (288, 384, 72, 96, 3.0)}
    for method, head in heads.items():
        for depth, backbone in DEPTH.items():
            for size, (iw, ih, hw, hh, sigma) in sizes.items():
                name = f"{method}_{depth}_{size}"
                write(
                    out,
                    name,
                    f"Table 2: {method} {backbone} {size}, COCO",
                    "Paper recipe (4.1.2): Adam 1e-3, x0.1 at 90 and 120, 140 epochs, detector boxes at val.",
                    backbone=backbone,
                    iw=iw,
                    ih=ih,
                    hw=hw,
                    hh=hh,
                    sigma=sigma,
                    **head,
                    **COCO,
                )
            name = f"mpii_{method}_{depth}_256x256"
            write(
                out,
                name,
                f"Table 4: {method} {backbone} on MPII, 256x256",
                "Hourglass augmentation (scale 0.25, rotation 30), GT person boxes, PCKh@0.5.",
                backbone=backbone,
                iw=256,
                ih=256,
                hw=64,
                hh=64,
                sigma=2.0,
                **head,
                **MPII,
            )
    for nd, feat in enumerate(["8x6", "16x12", "32x24", "64x48"]):
        final = "conv" if nd == 3 else "lhr"
        head = "lhr" if nd == 0 else "deconv"
        write(
            out,
            f"table5_feature_{feat}",
            f"Table 5: R50 with {nd} SimpleBaseline deconvs ({feat} feature), then regress to 64x48",
            "MSE loss as in Table 5 (its 8x6 AP equals Table 6's MSE row).",
            backbone="resnet50",
            iw=192,
            ih=256,
            hw=48,
            hh=64,
            sigma=2.0,
            head=head,
            num_deconv=nd,
            final_layer=final,
            loss="mse",
            **COCO,
        )
    for loss in ("mse", "ce_onehot", "ce_mask", "rce"):
        write(
            out,
            f"table6_{loss}",
            f"Table 6: FasterPose R50 256x192 trained with {loss}",
            "Same network for every row; only the loss changes.",
            backbone="resnet50",
            iw=192,
            ih=256,
            hw=48,
            hh=64,
            sigma=2.0,
            head="lhr",
            num_deconv=0,
            final_layer="conv",
            loss=loss,
            **COCO,
        )


# ---------------------------------------------------------------- the SynthPose study (configs/study)

STUDY_TEMPLATE = """\
# Study arm `{name}`: {label}
# Written by scripts/generate_configs.py; every arm of configs/study shares all of this but model.head,
# model.num_deconv, model.final_layer and loss.* (see configs/study/study.yaml for the two regimes).
# The quickstart's network and geometry: ResNet-18 cut after stage 3 (feature_index -2: stride 16, 256
# channels) at a 64x96 input: 4x6 features, 16x24 heatmaps at stride 4, so the LR head upsamples by L = 4
# and the HR head needs 2 deconvs. Unbiased targets + DARK decoding keep sub-pixel precision on small
# heatmaps. data.root is set by `fasterpose study`.
name: study_{name}
model:
  backbone: resnet18
  pretrained: false       # scratch regime: random init; the pretrained regime sets model.weights
  weights: null
  head: {head}
  num_deconv: {num_deconv}
  deconv_filters: 64      # SimpleBaseline's 256 scaled with the backbone's width (R50 2048 -> R18-stage3 256)
  deconv_kernel: 4
  final_layer: {final_layer}
  heatmap_stride: {heatmap_stride}
  feature_index: -2
  num_keypoints: 17
  prior: 0.01
data:
  dataset: synthpose
  root: {root}
  train_ann: annotations/person_keypoints_train.json
  train_images: train
  val_ann: annotations/person_keypoints_val.json
  val_images: val
  det_file: null
  det_score_threshold: 0.0
  keypoints: coco17
  input_size: [64, 96]      # (W, H)
  heatmap_size: [{hw}, {hh}]    # (w, h) = input_size / model.heatmap_stride
  box_padding: 1.25       # crop = person box enlarged 1.25x (training and inference)
  sigma: {sigma}
  encoding: unbiased
  use_joint_weights: false
  augment:
    scale_factor: 0.25
    rotation_factor: 30
    rotation_prob: 0.0       # no rotation: the short schedules learn faster without it
    flip: true
    half_body_prob: 0.0
    half_body_min_joints: 8
  skip_bad_images: false
  num_workers: 0            # data loading inline: one process per run (runs go in parallel)
loss:
  name: {loss}
  alpha: {alpha}
  gamma: {gamma}
  positive_threshold: 0.01   # positive pixel (alpha, CE mask): t >= 0.01 gives Table 1's 113 / 261 positives
  ce_weighted: false         # CE: plain (Eq. 1); true weights positives/negatives alpha / 1 - alpha
train:
  epochs: {epochs}
  batch_size: 16
  optimizer: adam
  lr: {lr}
  weight_decay: 0.0
  lr_steps: [{lr_step}]
  lr_factor: 0.1
  warmup_iters: 100
  grad_clip: null
  amp: true                 # CUDA only
  amp_dtype: bfloat16
  channels_last: true
  cpu_amp: false            # fp32 on every CPU, so runs compare across machines
  sync_bn: false
  seed: 0                   # set per run by `fasterpose study`
  eval_every: 1             # AP after every epoch (the convergence curves)
  checkpoint_every: 1
  out_dir: runs/study/{name}
  max_minutes: null
  log_every: 50
  device: auto
eval:
  batch_size: 64
  flip_test: true
  dark: true
  use_gt_boxes: true        # SynthPose has no detector file: ground-truth boxes
  in_vis_threshold: 0.2
  oks_nms_threshold: 0.9
  max_images: null
"""

# the scratch regime; study.yaml shortens the pretrained one
STUDY_SCHEDULE = {"epochs": 10, "lr": 0.005, "lr_step": "5, 8"}
LR = dict(head="lhr", num_deconv=0, final_layer="conv")
STUDY_ARMS: dict[str, tuple[str, dict[str, object]]] = {
    "lr_mse": ("LR head + MSE", dict(LR, loss="mse")),
    "lr_rce": ("LR head + RCE", dict(LR, loss="rce")),
    "hr_mse": ("HR head (2 deconvs) + MSE", dict(head="deconv", num_deconv=2, final_layer="conv", loss="mse")),
    "lr_ce_onehot": ("LR head + CE one-hot", dict(LR, loss="ce_onehot")),
    "lr_ce_mask": ("LR head + CE mask", dict(LR, loss="ce_mask")),
    "t5_1deconv": (
        "8x12 features (1 deconv + LHR L=2)",
        dict(head="deconv", num_deconv=1, final_layer="lhr", loss="mse"),
    ),
    **{
        f"rce_a{a:g}_g{g:g}": (f"RCE alpha {a:g} gamma {g:g}", dict(LR, loss="rce", alpha=a, gamma=g))
        for a, g in ((0.5, 1.0), (0.9, 1.0), (0.7, 0.0), (0.7, 2.0))
    },
}


def write_study(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    base = dict(
        alpha=0.7, gamma=1.0, heatmap_stride=4, hw=16, hh=24, sigma=1.25, root="data/synthpose_study", **STUDY_SCHEDULE
    )
    for name, (label, spec) in STUDY_ARMS.items():
        (out / f"{name}.yaml").write_text(STUDY_TEMPLATE.format(name=name, label=label, **{**base, **spec}))
    # the pretrained regime's pretraining: pose estimation with a head no arm uses (3 deconvs to 32x48
    # heatmaps at stride 2, MSE), on its own SynthPose copy
    pre = dict(
        base,
        head="deconv",
        num_deconv=3,
        final_layer="conv",
        loss="mse",
        heatmap_stride=2,
        hw=32,
        hh=48,
        sigma=2.5,
        root="data/synthpose_pretrain",
    )
    (out / "pretrain.yaml").write_text(
        STUDY_TEMPLATE.format(
            name="pretrain",
            label="backbone pretraining (3 deconvs to 32x48 heatmaps, MSE) for the pretrained regime",
            **pre,
        )
    )


if __name__ == "__main__":
    main()
    write_study(Path("configs/study"))

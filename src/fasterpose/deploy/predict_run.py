"""The ``predict`` loop as a library function: frames -> boxes -> poses -> drawings and results.

:func:`predict_source` keeps what it gathered when interrupted (Ctrl-C during a video or webcam):
the results JSON and the summary are written all the same, and :attr:`Summary.interrupted` says so.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from fasterpose.boxes import BoxFormatWarning
from fasterpose.deploy.boxes import BoxSource
from fasterpose.deploy.outputs import OutputError, OutputPlan
from fasterpose.deploy.predictor import Predictor
from fasterpose.deploy.results import Results
from fasterpose.deploy.smoothing import PoseSmoother
from fasterpose.deploy.sources import Frame, Source


@dataclass
class Summary:
    """What one run saw: counts for the closing lines and ``results_summary.json``."""

    kind: str
    threshold: float
    items: int = 0
    people: int = 0
    no_boxes: int = 0
    nothing_drawn: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    interrupted: bool = False
    video_note: str | None = None
    box_note: str | None = None
    frames_announced: int | None = None

    def count(self, boxes: np.ndarray | None, people: Results) -> None:
        self.items += 1
        self.people += len(people)
        if boxes is not None and len(boxes) == 0:
            self.no_boxes += 1
        elif not (people.scores > self.threshold).any():
            self.nothing_drawn += 1

    @property
    def unit(self) -> str:
        return "frames" if self.kind == "video" else "images"

    def lines(self) -> list[str]:
        """The closing report: one line per thing worth saying."""
        out = []
        if self.no_boxes:
            out.append(f"{self.no_boxes} of {self.items} {self.unit} had no person boxes")
        if self.nothing_drawn:
            out.append(
                f"{self.nothing_drawn} of {self.items} {self.unit} had boxes but no person kept with a joint "
                f"above --threshold {self.threshold:g} (nothing drawn)"
            )
        if self.skipped:
            names = ", ".join(s["file"] for s in self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
            out.append(f"{len(self.skipped)} unreadable image(s) skipped: {names}")
        if self.video_note:
            out.append(self.video_note)
        if self.box_note:
            out.append(self.box_note)
        if self.interrupted:
            out.append(f"interrupted after {self.items} {self.unit}; the results gathered so far were kept")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            self.unit: self.items,
            "people": self.people,
            "no_person_boxes": self.no_boxes,
            "no_person_drawn": self.nothing_drawn,
            "draw_threshold": self.threshold,
            "skipped": self.skipped,
            "interrupted": self.interrupted,
            "frames_announced": self.frames_announced,
        }


class _VideoOut:
    def __init__(self, plan: OutputPlan, stem: str, fps: float) -> None:
        self.path = plan.video_path(stem)
        self.plan, self.fps = plan, fps
        self.writer: cv2.VideoWriter | None = None

    def write(self, rgb: np.ndarray) -> None:
        if self.path is None:
            return
        if self.writer is None:
            self.plan.claim(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = (rgb.shape[1], rgb.shape[0])
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, size)
            if not self.writer.isOpened():
                raise OutputError(f"cannot write video {self.path} (OpenCV has no mp4v encoder?)")
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _entries(frame: Frame, people: Results, kind: str) -> list[dict[str, Any]]:
    entries = people.to_coco(frame.image_id)
    for e in entries:
        if kind == "images":
            e["file_name"] = frame.name
        else:
            e["frame"] = frame.image_id
    return entries


def predict_source(
    predictor: Predictor,
    source: Source,
    boxes: BoxSource,
    plan: OutputPlan,
    nms: bool = True,
    smoother: PoseSmoother | None = None,
    threshold: float = 0.3,
) -> tuple[list[dict[str, Any]], Summary]:
    """Run every frame of ``source``; returns the COCO results entries and the :class:`Summary`."""
    results: list[dict[str, Any]] = []
    summary = Summary(source.kind, threshold, frames_announced=source.frames_announced)
    video = _VideoOut(plan, source.name, source.fps or 30.0) if source.kind == "video" else None
    try:
        for frame in source:
            found = boxes(frame.name, frame.image_id if frame.named_id else None, frame.image)
            with warnings.catch_warnings():  # the box source counts misread boxes: one line at the end
                warnings.simplefilter("ignore", BoxFormatWarning)
                people = predictor(frame.image, found, frame.image_id, channel_order="rgb")  # frames are RGB
            if nms:
                people = predictor.suppress(people)
            if smoother is not None:
                people = people.with_people(smoother(list(people), frame.time))
            summary.count(found, people)
            results.extend(_entries(frame, people, source.kind))
            if video is not None:
                video.write(people.plot(threshold))
            elif plan.image_path(frame.name) is not None:
                plan.write_image(frame.name, people.plot(threshold))
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if video is not None:
            video.close()
    summary.skipped = list(source.skipped)
    summary.video_note = source.end_note() if not summary.interrupted else None
    summary.box_note = boxes.format_note()
    plan.write_json(plan.json_path, json.dumps(results))
    plan.write_json(plan.summary_path, json.dumps(summary.to_dict(), indent=1))
    return results, summary

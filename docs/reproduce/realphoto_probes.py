"""The measurements of docs/reproduce.md, "Real photographs", that no vpi command prints.

    python docs/reproduce/realphoto_probes.py matcher            # the matcher's variants (1 min)
    python docs/reproduce/realphoto_probes.py reset CKPT proj    # rows A', I': projection reset
    python docs/reproduce/realphoto_probes.py reset CKPT head    # rows A'', S': correction zeroed
    python docs/reproduce/realphoto_probes.py reset CKPT ssp     # row S'': self-support added
    python docs/reproduce/realphoto_probes.py ssp                # the matcher + self-support
    python docs/reproduce/realphoto_probes.py area CKPT          # rows U-W: area per photo class
    python docs/reproduce/realphoto_probes.py errors CKPT        # where the wrong pixels are
    python docs/reproduce/realphoto_probes.py parts              # the matcher + background parts

``matcher`` scores PANet's rule on ../shared/realphoto (split ``all``, 1-shot, 128 px) with
MobileNetV2's block-13 features dilated as the models' encoder was, and undilated as
``vpi.eval.matcher`` runs it, and other undilated blocks from 10 to 16. ``reset`` scores
a matching-decoder checkpoint with, at test time only, its prior net's projection set to the
identity (``proj``), its decoder's correction zeroed (``head``) or one round of self-support
matching added to its matching decoder (``ssp``), on the built-in fold and on the
photos, 300 episodes each, L = 1. ``ssp`` scores the matcher with and without one round of
self-support matching (the model's ``_self_supported``, nothing learned) on the photos, 445
episodes. ``area`` prints, per photo class (300 episodes, L = 1), the class-IoU and the predicted
over the true foreground area, with the checkpoint's correction and with it zeroed. ``errors``
scores the checkpoint as `vpi eval` does (the test lists, L = 6, its own threshold) and prints,
as fractions of the target's area, the target pixels it missed and the pixels it wrongly took:
on the built-in data split into other objects' pixels and background. ``parts`` scores the
matcher's rule on the demo's prototype features (blocks 13 and 6), 1-shot, with 0, 3 and 5
background parts (``vpi.model.parts``, nothing learned) beside the background prototype, on the
built-in test list (500 episodes) and the photos (445).
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

from vpi.checkpoint import load_model
from vpi.config import apply_overrides, get_preset
from vpi.data import build_episodes
from vpi.eval.matcher import SCALE, PrototypeMatcher
from vpi.eval.scoring import evaluate_model
from vpi.graphs import summarise_samples
from vpi.model import Features
from vpi.model.backbone import IMAGENET_MEAN, IMAGENET_STD, build_backbone
from vpi.model.gaussian import masked_average_pool
from vpi.model.nets import _self_supported, prototype_similarity
from vpi.model.parts import background_parts
from vpi.model.vpi import pooled_map
from vpi.model.weights import load_backbone_weights

SHARED = Path(__file__).resolve().parents[3] / "shared"
PHOTOS = {"dataset": "fss", "root": str(SHARED / "realphoto"),
          "splits": str(SHARED / "realphoto-splits" / "all")}


class _Block(torch.nn.Module):
    """torchvision's MobileNetV2 up to ``block``, undilated: its features as the deep map."""

    def __init__(self, block: int) -> None:
        super().__init__()
        net = torchvision.models.mobilenet_v2()
        net.load_state_dict(load_backbone_weights("mobilenet_v2", "imagenet"))
        self.features = net.features[: block + 1].eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> Features:
        deep = self.features((images - self.mean) / self.std)
        return Features(deep, deep, deep, deep)


def _score(predictor, data: dict, episodes: int = 500, samples: int = 1) -> str:
    config = apply_overrides(get_preset("demo"), {"data": data})
    dataset = build_episodes(config.data, "test", shots=1, episodes=episodes, seed=0)
    metrics = evaluate_model(predictor, dataset, samples=samples, seed=0)
    return f"{100 * metrics['class_iou']:.1f} (swapped {100 * metrics['swapped']['class_iou']:.1f})"


def matcher_variants() -> None:
    state = load_backbone_weights("mobilenet_v2", "imagenet")
    for dilated in (True, False):
        encoder = build_backbone("mobilenet_v2", state, "mid", dilated=dilated)
        print(f"block 13, dilated={dilated}:", _score(PrototypeMatcher(encoder), PHOTOS))
    for block in (10, 11, 12, 13, 14, 16):
        print(f"block {block}, undilated:", _score(PrototypeMatcher(_Block(block)), PHOTOS))


class _SelfSupportedMatcher(PrototypeMatcher):
    """The matcher's rule, then once more with prototypes moved towards the query's own."""

    @torch.no_grad()
    def predict(self, support_images, support_masks, query_images, samples=1, generator=None):
        batch, shots = support_images.shape[:2]
        support = self.encoder(support_images.flatten(0, 1)).deep
        masks = support_masks.flatten(0, 1)
        fg = masked_average_pool(support, masks).view(batch, shots, -1).mean(1)
        bg = masked_average_pool(support, 1 - masks).view(batch, shots, -1).mean(1)
        keys = self.encoder(query_images).deep
        z = torch.cat([fg, bg], -1)[:, None]

        def logits(z):
            similarity = prototype_similarity(keys, z.view(batch, 2, -1))
            return SCALE * (similarity[:, :1] - similarity[:, 1:])

        z = _self_supported(z, keys, logits(z))
        maps = F.interpolate(logits(z), size=query_images.shape[-2:], mode="bilinear")
        return summarise_samples(torch.sigmoid(maps))


def matcher_self_support() -> None:
    encoder = build_backbone("mobilenet_v2", load_backbone_weights("mobilenet_v2", "imagenet"),
                             "mid", dilated=False)
    print("matcher:", _score(PrototypeMatcher(encoder), PHOTOS, episodes=445))
    print("matcher + self-support:", _score(_SelfSupportedMatcher(encoder), PHOTOS, episodes=445))


class _PartsMatcher(PrototypeMatcher):
    """The matcher's rule on the demo's pooled features (deep and mid), a pixel foreground only
    when nearer the foreground prototype than the background one and each background part."""

    def __init__(self, encoder, parts: int) -> None:
        super().__init__(encoder)
        self.parts = parts

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return pooled_map(self.encoder(images), "deep+mid")

    @torch.no_grad()
    def predict(self, support_images, support_masks, query_images, samples=1, generator=None):
        support, masks = self._features(support_images[:, 0]), support_masks[:, 0]
        fg = masked_average_pool(support, masks)
        prototypes = [fg[:, None], masked_average_pool(support, 1 - masks)[:, None]]
        if self.parts:
            prototypes.append(background_parts(support, masks, fg, self.parts))
        similarity = prototype_similarity(self._features(query_images), torch.cat(prototypes, 1))
        difference = similarity[:, :1] - similarity[:, 1:].amax(1, keepdim=True)
        maps = F.interpolate(difference, size=query_images.shape[-2:], mode="bilinear")
        return summarise_samples(torch.sigmoid(SCALE * maps))


def matcher_parts() -> None:
    encoder = build_backbone("mobilenet_v2", load_backbone_weights("mobilenet_v2", "imagenet"),
                             "mid", dilated=False)
    for parts in (0, 3, 5):
        matcher = _PartsMatcher(encoder, parts)
        print(f"{parts} background parts: built-in {_score(matcher, {})}, "
              f"photos {_score(matcher, PHOTOS, episodes=445)}")


def reset(checkpoint: str, part: str) -> None:
    model, own, _ = load_model(checkpoint, torch.device("cpu"))  # own: the data it trained on
    with torch.no_grad():
        if part == "proj":
            torch.nn.init.eye_(model.prior_net.mean.weight)
            model.prior_net.mean.bias.zero_()
        elif part == "head":
            model.decoder.head.weight.zero_()
            model.decoder.head.bias.zero_()
        else:  # "ssp": a round of self-support matching the checkpoint did not train with
            model.decoder.self_support = 1
    for name, data in (("built-in", {}), ("photos", PHOTOS)):
        config = apply_overrides(own, {"data": data})
        dataset = build_episodes(config.data, "test", shots=1, episodes=300, seed=0)
        metrics = evaluate_model(model, dataset, samples=1, seed=0)
        print(f"{part} reset, {name}: {100 * metrics['class_iou']:.1f}")


def area(checkpoint: str) -> None:
    from collections import Counter

    from vpi.data import collate_episodes
    from vpi.data.episode import IGNORE_INDEX

    for scale in (1.0, 0.0):
        model, own, _ = load_model(checkpoint, torch.device("cpu"))
        with torch.no_grad():  # 0: the correction zeroed, as in ``reset CKPT head``
            model.decoder.head.weight.mul_(scale)
            model.decoder.head.bias.mul_(scale)
        dataset = build_episodes(apply_overrides(own, {"data": PHOTOS}).data, "test", shots=1,
                                 episodes=300, seed=0)
        counts: dict[str, Counter] = {k: Counter() for k in ("overlap", "union", "said", "true")}
        for start in range(0, len(dataset), 50):
            episodes = [dataset[i] for i in range(start, min(start + 50, len(dataset)))]
            batch = collate_episodes(episodes)
            maps = model.predict(batch.support_images, batch.support_masks, batch.query_image,
                                 samples=1, generator=torch.Generator().manual_seed(0))
            said, valid = maps.probability > 0.5, batch.query_mask != IGNORE_INDEX
            true = batch.query_mask == 1
            for i, episode in enumerate(episodes):
                for key, pixels in (("overlap", said & true), ("union", said | true),
                                    ("said", said), ("true", true)):
                    counts[key][episode.class_id] += int((pixels[i] & valid[i]).sum())
        for class_id in sorted(counts["true"]):
            print(f"correction x{scale:.0f} {dataset.class_names[class_id]:16s} IoU "
                  f"{100 * counts['overlap'][class_id] / counts['union'][class_id]:5.1f}  "
                  f"area {counts['said'][class_id] / counts['true'][class_id]:.2f}")


def errors(checkpoint: str) -> None:
    from vpi.data.episode import IGNORE_INDEX
    from vpi.eval.scoring import iterate_batches

    model, own, _ = load_model(checkpoint, torch.device("cpu"))
    for name, data in (("built-in", {}), ("photos", PHOTOS)):
        config = apply_overrides(own, {"data": data})
        dataset = build_episodes(config.data, "test", shots=1, episodes=config.eval.episodes,
                                 seed=0)
        generator = torch.Generator().manual_seed(0)
        totals = torch.zeros(5)  # target, missed, taken on other objects, on background, taken
        for _, batch in iterate_batches(dataset, 8):
            maps = model.predict(batch.support_images, batch.support_masks, batch.query_image,
                                 samples=6, generator=generator)
            valid = batch.query_mask != IGNORE_INDEX
            said = (maps.probability > config.eval.threshold) & valid
            true = batch.query_mask == 1
            wrong = said & ~true
            objects = (batch.query_objects.bool() if batch.query_objects is not None
                       else torch.zeros_like(true))  # photos: no other objects are known
            totals += torch.tensor([true.sum(), (true & ~said).sum(), (wrong & objects).sum(),
                                    (wrong & ~objects).sum(), wrong.sum()]).float()
        target, missed, on_objects, on_background, taken = (totals / totals[0]).tolist()
        split = (f" ({on_objects:.2f} on other objects, {on_background:.2f} on background)"
                 if name == "built-in" else "")
        print(f"{name}: missed {missed:.2f} of the target, wrongly taken {taken:.2f}{split}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    if sys.argv[1:2] == ["matcher"]:
        matcher_variants()
    elif sys.argv[1:2] == ["ssp"]:
        matcher_self_support()
    elif sys.argv[1:2] == ["parts"]:
        matcher_parts()
    elif sys.argv[1:2] == ["area"] and len(sys.argv) == 3:
        area(sys.argv[2])
    elif sys.argv[1:2] == ["errors"] and len(sys.argv) == 3:
        errors(sys.argv[2])
    elif sys.argv[1:2] == ["reset"] and len(sys.argv) == 4 and sys.argv[3] in ("proj", "head", "ssp"):
        reset(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)

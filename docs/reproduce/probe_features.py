"""Which frozen MobileNetV2 block separates a query's target from its other objects?

For each validation episode of the built-in data (fold 0), the support's masked-average
prototype is compared (cosine) with every query pixel of every block's feature map; the AUC says
how well that score ranks target pixels above the pixels of the query's other objects (0.5 is
chance). "max-match" scores each query pixel by its most similar support pixel instead
(PFENet's prior mask). Run: python docs/reproduce/probe_features.py  (about half a minute).
"""

import numpy as np
import torch
import torch.nn.functional as F

from vpi.data.builtin import BuiltinEpisodes
from vpi.model.backbone import build_backbone
from vpi.model.gaussian import masked_average_pool
from vpi.model.weights import load_backbone_weights


def auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    ranks = torch.cat([positive, negative]).argsort().argsort().float()
    n, m = len(positive), len(negative)
    return ((ranks[:n].sum() - n * (n - 1) / 2) / (n * m)).item()


def main(episodes: int = 120) -> None:
    encoder = build_backbone("mobilenet_v2", load_backbone_weights("mobilenet_v2", "imagenet"))
    encoder.eval()
    blocks = [encoder.stem, encoder.stage2, encoder.stage4, encoder.stage8, *encoder.deep_stage]
    names = ["block 0", "block 1", "block 3", "block 6 (stage8)"] + [
        f"block {7 + i}" for i in range(len(encoder.deep_stage))]
    scores: dict[str, list[float]] = {n: [] for n in names}
    matches: dict[str, list[float]] = {n: [] for n in names}
    dataset = BuiltinEpisodes("val", 0, 1, 128, episodes, 0, False)
    with torch.no_grad():
        for index in range(len(dataset)):
            episode = dataset[index]
            x = (torch.cat([episode.support_images, episode.query_image[None]]) - encoder.mean)
            x = x / encoder.std
            target = (episode.query_mask == 1).float()[None, None]
            objects = episode.query_objects.float()[None, None]
            for name, block in zip(names, blocks, strict=True):
                x = block(x)
                size = x.shape[-2:]
                t = F.adaptive_avg_pool2d(target, size).flatten()
                o = F.adaptive_avg_pool2d(objects, size).flatten()
                positive, negative = t > 0.5, (o > 0.5) & (t < 0.1)
                support = F.adaptive_avg_pool2d(episode.support_masks, size).flatten() > 0.5
                if positive.sum() < 2 or negative.sum() < 2 or not support.any():
                    continue
                query = F.normalize(x[1], dim=0).flatten(1)
                prototype = F.normalize(masked_average_pool(x[:1], episode.support_masks), dim=1)
                similarity = prototype[0] @ query
                scores[name].append(auc(similarity[positive], similarity[negative]))
                nearest = (F.normalize(x[0], dim=0).flatten(1)[:, support].T @ query).max(0).values
                matches[name].append(auc(nearest[positive], nearest[negative]))
    for name in names:
        print(f"{name:18s} prototype AUC {np.mean(scores[name]):.3f}  "
              f"max-match AUC {np.mean(matches[name]):.3f}  ({len(scores[name])} episodes)")


if __name__ == "__main__":
    main()

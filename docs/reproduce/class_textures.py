r"""Row U of docs/reproduce.md ("Real photographs"): the vpi CLI on built-in data with class textures.

    python docs/reproduce/class_textures.py train --set "data.object_sizes=[0.35,0.95]"
    python docs/reproduce/class_textures.py eval runs/demo-*/best.pt      # on the same data
    vpi eval runs/demo-*/best.pt --dataset fss --root ../shared/realphoto \
        --splits ../shared/realphoto-splits/all

Two changes to ``vpi.data.builtin``, patched in before the CLI runs (not kept in vpi: they cost
photographs 4.5 points): every instance of a class is cut from one fixed region of its class's
photograph (a centre drawn once per class, the crop's half side as before), so a class's instances
share a texture; and no background is cut from the photograph of an object in the scene.
"""

import numpy as np

import vpi.data.builtin as builtin

_render_scene, _background = builtin.render_scene, builtin._background
_excluded: set[int] = set()  # background photos the scene being rendered may not use


def _render_without_own_backgrounds(class_ids, rng, image_size, surfaces="palette",
                                    sizes=builtin.OBJECT_SIZES):
    names = {builtin._SURFACE_NAMES[c] for c in class_ids}
    _excluded.clear()
    _excluded.update(i for i, name in enumerate(builtin._PHOTO_NAMES) if name in names)
    return _render_scene(class_ids, rng, image_size, surfaces, sizes)


def _background_of_others(rng, size):
    photos = builtin._photos()
    allowed = [i for i in range(len(photos)) if i not in _excluded]
    pick = photos[allowed[rng.integers(len(allowed))]]
    original, builtin._photos = builtin._photos, lambda: (pick,)
    try:
        return _background(rng, size)
    finally:
        builtin._photos = original


def _class_region_surface(class_id, u, v, rng):
    photo = builtin._surfaces()[class_id]
    height, width = photo.shape[:2]
    centre = np.random.default_rng(1000 + class_id).uniform(0.3, 0.7, size=2) * (height, width)
    half = min(height, width) * rng.uniform(*builtin._SURFACE_CROP)
    rng.uniform(0.0, 0.0, size=2)  # two draws the run of row U made: its episodes, exactly
    top, left = np.clip(centre, half, (height - half, width - half))
    rows = np.clip((top + v * half).astype(np.int64), 0, height - 1)
    cols = np.clip((left + u * half).astype(np.int64), 0, width - 1)
    return photo[rows, cols] * np.float32(rng.uniform(0.8, 1.2))


if __name__ == "__main__":
    builtin.render_scene = _render_without_own_backgrounds
    builtin._background = _background_of_others
    builtin._photo_surface = _class_region_surface
    from vpi.cli import main

    main()

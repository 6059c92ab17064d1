"""The key tree: every purpose gets its own key, and no consumer's split lands on another's."""

import itertools

import jax
import numpy as np
import pytest

from mhsnn import keys


def _bits(key):
    return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def test_no_two_purposes_share_a_key():
    root = jax.random.key(0)
    paths = []
    for problem in ("sigma_sweep", "n_train=10", "n_train=40"):
        for fold, part in itertools.product(range(5), ("train", "test")):
            paths.append(("encode", problem, fold, part))
        for method in ("mh", "pt", "sg_offline", "sg_in_loop", "sg_offline_literal"):
            paths += [("method", problem, method), ("evaluate", problem, method)]
    paths += [("chip", "mismatch", i) for i in range(20)]
    derived = [keys.derive(root, *p) for p in paths]
    # Consumers split what they get (bayes.setup: init / run; the driver: one key per step),
    # and split(k)[i] == fold_in(k, i): those children must not meet another path's key.
    family = {}
    for path, key in zip(paths, derived):
        family.setdefault(_bits(key), []).append(path)
        for i, child in enumerate(jax.random.split(key, 4)):
            family.setdefault(_bits(child), []).append((*path, f"split[{i}]"))
        for i in range(4):
            family.setdefault(_bits(jax.random.fold_in(key, i)), []).append((*path, f"fold_in {i}"))
    shared = {k: v for k, v in family.items()
              if len({p[:-1] if str(p[-1]).startswith(("split", "fold_in")) else p
                      for p in v}) > 1}
    assert not shared, shared
    assert len(set(map(_bits, derived))) == len(paths)


def test_the_collisions_the_tree_replaces_are_real():
    # Under partitionable Threefry a split child equals a fold_in: the reason for the tree.
    root = jax.random.key(0)
    old_mh_root = jax.random.fold_in(root, 1)
    old_fold1_train = jax.random.split(jax.random.fold_in(root, 1))[0]
    assert _bits(jax.random.fold_in(old_mh_root, 0)) == _bits(old_fold1_train)
    new = {_bits(keys.derive(root, "method", "sigma_sweep", "mh")),
           _bits(keys.derive(root, "encode", "sigma_sweep", 1, "train"))}
    assert len(new) == 2


def test_names_and_integers_never_fold_in_the_same_value():
    root = jax.random.key(3)
    assert _bits(keys.derive(root, "chip", 0)) != _bits(keys.derive(root, "chip", "0"))
    assert _bits(keys.derive(root, "chip", 1, 2)) != _bits(keys.derive(root, "chip", 2, 1))
    assert _bits(keys.derive(root, "chip", 1)) == _bits(keys.derive(root, "chip", 1))


def test_unknown_purpose_and_bad_components_are_refused():
    root = jax.random.key(0)
    with pytest.raises(ValueError, match="purpose"):
        keys.derive(root, "training")
    with pytest.raises(TypeError):
        keys.derive(root, "method", 1.5)
    with pytest.raises(ValueError):
        keys.derive(root, "method", -1)

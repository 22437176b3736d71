"""A thinc model's parameters as safetensors: how a component saves its head, never pickle."""

import json
from pathlib import Path

import numpy
from safetensors import safe_open
from safetensors.numpy import save_file as save_numpy
from thinc.api import Model


def write_thinc_params(model: Model, path: Path) -> None:
    """Save a thinc model's parameters and dimensions as safetensors (a component's head)."""
    tensors, dims = {}, {}
    for i, node in enumerate(model.walk()):
        dims[str(i)] = {name: node.maybe_get_dim(name) for name in node.dim_names}
        for name in node.param_names:
            if node.has_param(name):
                array = node.ops.to_numpy(node.get_param(name))
                tensors[f"{i}.{node.name}.{name}"] = numpy.ascontiguousarray(array)
    save_numpy(tensors, str(path), metadata={"dims": json.dumps(dims)})


def read_thinc_params(model: Model, path: Path) -> None:
    """Load parameters saved by `write_thinc_params` into a model of the same architecture."""
    with safe_open(str(path), framework="numpy") as file:
        dims = json.loads(file.metadata()["dims"])
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    nodes = list(model.walk())
    if len(nodes) != len(dims):
        raise ValueError(f"{path}: saved for a model of {len(dims)} layers, not {len(nodes)}")
    for i, node in enumerate(nodes):
        for name, value in dims[str(i)].items():
            if value is not None:
                node.set_dim(name, value, force=True)
        for name in node.param_names:
            key = f"{i}.{node.name}.{name}"
            if key in tensors:
                node.set_param(name, node.ops.asarray_f(tensors[key]))

"""What both fixture scripts share: a graph made into a checked model at one opset and IR
version, so every fixture of tools/onnx-fixtures is written the same way."""

import onnx
from onnx import helper

# The opset torch.onnx.export writes by default; IR version 8 is what that opset needs.
OPSET = 17


def finish(graph, producer, opset=OPSET):
    """The model of `graph` (opset `opset`, IR version 8, or 9 from opset 19 on, `producer`
    as its producer name), checked by the onnx package's full checker."""
    m = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name=producer,
    )
    m.ir_version = 8 if opset < 19 else 9
    onnx.checker.check_model(m, full_check=True)
    return m

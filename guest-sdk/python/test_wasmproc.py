"""Unit tests of wasmproc.py outside a component: python3 -m unittest discover -s guest-sdk/python"""

import unittest

import wasmproc
from wasmproc import Inputs, Output, Process, ProcessError


class Echo(Process):
    description = {"id": "echo-test", "version": "1", "title": "t", "inputs": {}, "outputs": {}}

    def execute(self, inputs):
        if inputs.value("boom"):
            raise KeyError("boom")
        if inputs.value("fail"):
            raise ProcessError.no_result("asked to fail")
        return {"echo": inputs.raw}


class InputsTest(unittest.TestCase):
    def test_qualified_values_unwrap(self):
        inputs = Inputs({"a": {"value": "x", "mediaType": "text/plain"}, "b": "y", "n": 2.5})
        self.assertEqual(inputs.required_str("a"), "x")
        self.assertEqual(inputs.required_str("b"), "y")
        self.assertEqual(inputs.required_number("n"), 2.5)
        self.assertEqual(inputs.optional_str("missing", "d"), "d")
        with self.assertRaises(ProcessError) as e:
            inputs.required_str("missing")
        self.assertEqual(e.exception.code, "invalid-input")
        self.assertEqual(e.exception.message, "input 'missing' is required")
        with self.assertRaises(ProcessError) as e:
            inputs.required_str("n")
        self.assertEqual(e.exception.message, "input 'n' must be a string, got 2.5")
        with self.assertRaises(ProcessError) as e:
            Inputs({"t": True}).optional_number("t")
        self.assertEqual(e.exception.message, "input 't' must be a number, got true")
        self.assertEqual(Inputs({"k": 3}).optional_number("k", 1), 3)
        self.assertEqual(Inputs({}).optional_number("k", 1), 1)
        with self.assertRaises(ProcessError) as e:
            Inputs({"k": None}).required("k")
        self.assertEqual(e.exception.message, "input 'k' is required")

    def test_binary_inputs_decode_base64(self):
        inputs = Inputs({"img": {"value": "AAEC", "mediaType": "image/png"}, "raw": "AAEC", "bad": "%%"})
        img = inputs.binary("img")
        self.assertEqual((img.data, img.media_type), (b"\0\1\2", "image/png"))
        self.assertEqual(inputs.binary("raw").data, b"\0\1\2")
        self.assertIsNone(inputs.binary("none"))
        with self.assertRaises(ProcessError):
            inputs.binary("bad")

    def test_non_object_inputs_are_rejected(self):
        for text in ("[1]", "not json"):
            with self.assertRaises(ProcessError):
                Inputs.from_json(text)


class OutputTest(unittest.TestCase):
    def test_json_and_bytes(self):
        self.assertEqual(Output.json("a", "hi").text, '"hi"')
        self.assertEqual(Output.json("a", {"k": [1]}, "application/geo+json").media_type, "application/geo+json")
        self.assertEqual(Output.bytes("b", b"\1").data, b"\1")
        with self.assertRaises(ValueError):
            Output.json("nan", float("nan"))


class ExportTest(unittest.TestCase):
    def test_call_and_export(self):
        self.assertEqual(wasmproc.call(Echo, {"x": 1})[0].value(), {"x": 1})
        world = wasmproc.export(Echo)()
        self.assertEqual(world.describe(), '{"id": "echo-test", "version": "1", "title": "t", "inputs": {}, "outputs": {}}')
        self.assertEqual(world.execute('{"x": "y"}')[0].value(), {"x": "y"})
        with self.assertRaises(ProcessError) as e:
            world.execute('{"fail": true}')
        self.assertEqual((e.exception.code, e.exception.message), ("no-result", "asked to fail"))
        with self.assertRaises(ProcessError) as e:
            world.execute('{"boom": true}')
        self.assertEqual(e.exception.code, "internal-error")
        self.assertIn("KeyError", e.exception.message)

    def test_progress_and_log_outside_a_component(self):
        wasmproc.progress(150, "clamped")
        wasmproc.log("info", "hello")
        with self.assertRaises(ValueError):
            wasmproc.log("loud", "no such level")


if __name__ == "__main__":
    unittest.main()

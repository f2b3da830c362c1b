import Foundation
import Testing
import TestSupport
@testable import WebAPI

@Suite struct JSONTests {
    @Test func parsesKeepingOrderTypesAndLastDuplicate() throws {
        let v = try JSONParser.parse(#"{"b": 1, "a": 1.0, "b": [true, null, "x\u00e9\ud83d\ude00"], "c": 123456789012345678901234}"#)
        let o = try #require(v.objectValue)
        #expect(o.keys == ["b", "a", "c"])
        #expect(o["a"] == .double(1.0))
        #expect(o["b"] == .array([.bool(true), .null, .string("xé😀")]))
        #expect(o["c"] == .bigInt("123456789012345678901234"))
    }

    @Test func syntaxErrorsReadLikePython() {
        func err(_ s: String) -> JSONSyntaxError? {
            do { _ = try JSONParser.parse(s); return nil } catch { return error }
        }
        #expect(err(#"{"steps":"#)?.message == "Expecting value")
        #expect(err(#"{"steps":"#)?.position == 9)
        #expect(err("{'a': 1}")?.message == "Expecting property name enclosed in double quotes")
        #expect(err(#"{"a": 1} x"#)?.message == "Extra data")
        #expect(err("[1,\n 2,]")?.line == 2)
        #expect(err(String(repeating: "[", count: 600) + String(repeating: "]", count: 600))?.message == "Nesting too deep")
    }

    @Test func serialisesLikePython() {
        let v: JSONValue = ["f": 7.0, "g": 1e-05, "h": 0.1, "i": 3, "s": "é\n\"", "n": nil]
        #expect(v.serialized() == #"{"f":7.0,"g":1e-05,"h":0.1,"i":3,"s":"é\n\"","n":null}"#)
        #expect(v.pythonDumps() == #"{"f": 7.0, "g": 1e-05, "h": 0.1, "i": 3, "s": "\u00e9\n\"", "n": null}"#)
        #expect(JSONValue.string("😀").pythonDumps() == #""\ud83d\ude00""#)
    }
}

@Suite struct PydanticCoercionTests {
    @Test func intAcceptsWhatPythonIntAccepts() throws {
        #expect(try Pydantic.int("123") == 123)
        #expect(try Pydantic.int(" 12 ") == 12)
        #expect(try Pydantic.int(1.9) == 1)
        #expect(try Pydantic.int(-1.9) == -1)
        #expect(try Pydantic.int(true) == 1)
        #expect(try Pydantic.int("1_000") == 1000)
        for bad: JSONValue in ["1.5", "abc", "", [1], ["a": 1], .double(.infinity)] {
            #expect(throws: Pydantic.Failure.self) { try Pydantic.int(bad) }
        }
    }

    @Test func floatStrBoolListDict() throws {
        #expect(try Pydantic.float("7") == 7)
        #expect(try Pydantic.float(3) == 3)
        #expect(throws: Pydantic.Failure.self) { try Pydantic.float("seven") }
        #expect(try Pydantic.str(123) == "123")
        #expect(try Pydantic.str(1.5) == "1.5")
        #expect(throws: Pydantic.Failure.self) { try Pydantic.str(["a"]) }
        #expect(try Pydantic.bool("yes") == true)
        #expect(try Pydantic.bool("Off") == false)
        #expect(try Pydantic.bool(0) == false)
        #expect(throws: Pydantic.Failure.self) { try Pydantic.bool(2) }
        #expect(throws: Pydantic.Failure.self) { try Pydantic.list("abc") }
        #expect(try Pydantic.dict([["a", 1]])["a"] == .int(1))
        #expect(throws: Pydantic.Failure.self) { try Pydantic.dict(5) }
    }
}

@Suite struct Txt2ImgDecodeTests {
    /// The `parameters` echo of an empty request holds A1111's fields, in A1111's order, with its defaults
    /// (fixture: the txt2img schema of A1111 v1.10.1's /openapi.json).
    @Test func defaultsMatchA1111Schema() throws {
        let raw = try #require(try Fixtures.jsonObject("api/a1111_get/txt2img_fields.json") as? [[Any]])
        let req = try Txt2ImgRequest.decode(.object(JSONObject()))
        #expect(req.values.keys == raw.map { $0[0] as? String ?? "" })
        for row in raw {
            let name = row[0] as? String ?? ""
            let value = try #require(req.values[name])
            switch row[2] {
            case let n as NSNumber where row[1] as? String == "boolean": #expect(value == .bool(n.boolValue), "\(name)")
            case let n as NSNumber where row[1] as? String == "integer": #expect(value == .int(n.int64Value), "\(name)")
            case let n as NSNumber: #expect(value == .double(n.doubleValue), "\(name)")
            case let s as String: #expect(value == .string(s), "\(name)")
            case is NSNull: #expect(value == .null, "\(name)")
            case let a as [Any]: #expect(value == .array([]) && a.isEmpty, "\(name)")
            case let d as [String: Any]: #expect(value == .object(JSONObject()) && d.isEmpty, "\(name)")
            default: Issue.record("unexpected default for \(name)")
            }
        }
    }

    @Test func coercesAndRemembersSetFields() throws {
        let req = try Txt2ImgRequest.decode(["prompt": 123, "seed": 1.5, "cfg_scale": 7, "steps": "20", "x": 1])
        #expect(req.values["prompt"] == .string("123"))
        #expect(req.values["seed"] == .int(1))
        #expect(req.values["cfg_scale"] == .double(7))
        #expect(req.values["steps"] == .int(20))
        #expect(req.values["x"] == nil)
        #expect(req.setFields == ["prompt", "seed", "cfg_scale", "steps"])
    }

    @Test func collectsErrorsInFieldOrderAndChecksLimits() {
        do {
            _ = try Txt2ImgRequest.decode(["width": "b", "steps": "a"])
            Issue.record("accepted bad types")
        } catch {
            #expect(error.errors.map(\.loc) == [["body", "steps"], ["body", "width"]])
        }
        do {
            _ = try Txt2ImgRequest.decode(["steps": 0, "width": 100_000])
            Issue.record("accepted out-of-range values")
        } catch {
            #expect(error.errors.map(\.type) == ["value_error.number.not_ge", "value_error.number.not_le"])
        }
    }
}

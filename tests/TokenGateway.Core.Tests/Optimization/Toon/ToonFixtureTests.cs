using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Optimization.Toon;

namespace TokenGateway.Core.Tests.Optimization.Toon;

/// <summary>Runs every case of the TOON spec v4.0 conformance fixtures (tests/corpus/toon-spec/tests/fixtures).</summary>
public sealed class ToonFixtureTests
{
    public static TheoryData<string, string> EncodeCases() => Cases("encode");

    public static TheoryData<string, string> DecodeCases() => Cases("decode");

    [Theory]
    [MemberData(nameof(EncodeCases))]
    public void Encode_SpecFixture_MatchesExpected(string file, string name)
    {
        var test = Find("encode", file, name);
        var options = ToonEncoderOptions.Default;
        if (test["options"] is JsonObject o)
        {
            options = new ToonEncoderOptions
            {
                Delimiter = o["delimiter"] is { } d ? ((string)d!)[0] : ',',
                IndentSize = o["indentSize"] is { } i ? (int)i : 2,
            };
        }

        using var input = JsonDocument.Parse(test["input"]?.ToJsonString() ?? "null");

        var actual = ToonEncoder.Encode(input.RootElement, options);

        Assert.Equal((string)test["expected"]!, actual);
    }

    [Theory]
    [MemberData(nameof(DecodeCases))]
    public void Decode_SpecFixture_MatchesExpectedOrErrors(string file, string name)
    {
        var test = Find("decode", file, name);
        var options = ToonDecoderOptions.Default;
        if (test["options"] is JsonObject o)
        {
            options = new ToonDecoderOptions
            {
                Strict = o["strict"] is not { } s || (bool)s!,
                IndentSize = o["indentSize"] is { } i ? (int)i : 2,
            };
        }

        var input = (string)test["input"]!;
        if (test["shouldError"] is { } e && (bool)e!)
        {
            Assert.Throws<ToonFormatException>(() => ToonDecoder.Decode(input, options));
            return;
        }

        var actual = ToonDecoder.Decode(input, options);

        Assert.True(DeepEquals(test["expected"], actual), $"expected {test["expected"]?.ToJsonString()} but got {actual?.ToJsonString()}");
    }

    [Theory]
    [MemberData(nameof(EncodeCases))]
    public void RoundTrip_EncodeFixtureInput_DecodesToInput(string file, string name)
    {
        var test = Find("encode", file, name);
        var options = test["options"] is JsonObject o && o["delimiter"] is { } d
            ? new ToonEncoderOptions { Delimiter = ((string)d!)[0] }
            : ToonEncoderOptions.Default;
        using var input = JsonDocument.Parse(test["input"]?.ToJsonString() ?? "null");

        var decoded = ToonDecoder.Decode(ToonEncoder.Encode(input.RootElement, options));

        // Tabular and keyed forms reorder keys to the header's field order (spec §2), so compare as key sets.
        Assert.True(JsonSemantics.AreEquivalent(input.RootElement, decoded), $"round trip of {test["input"]?.ToJsonString()} gave {decoded?.ToJsonString()}");
    }

    internal static bool DeepEquals(JsonNode? expected, JsonNode? actual)
    {
        switch (expected)
        {
            case null:
                return actual is null;
            case JsonObject eo:
                {
                    if (actual is not JsonObject ao || ao.Count != eo.Count)
                    {
                        return false;
                    }

                    // Order-sensitive: TOON preserves key order.
                    return eo.Zip(ao).All(p => p.First.Key == p.Second.Key && DeepEquals(p.First.Value, p.Second.Value));
                }

            case JsonArray ea:
                return actual is JsonArray aa && aa.Count == ea.Count && ea.Zip(aa).All(p => DeepEquals(p.First, p.Second));
            default:
                {
                    if (actual is not JsonValue av)
                    {
                        return false;
                    }

                    var ek = expected.GetValueKind();
                    if (ek != av.GetValueKind())
                    {
                        return false;
                    }

                    return ek switch
                    {
                        JsonValueKind.Number => double.Parse(expected.ToJsonString(), CultureInfo.InvariantCulture) ==
                                                double.Parse(av.ToJsonString(), CultureInfo.InvariantCulture),
                        JsonValueKind.String => (string)expected! == (string)av!,
                        _ => true,
                    };
                }
        }
    }

    private static TheoryData<string, string> Cases(string category)
    {
        var data = new TheoryData<string, string>();
        foreach (var path in Directory.GetFiles(CorpusPaths.Corpus("toon-spec", "tests", "fixtures", category), "*.json").Order(StringComparer.Ordinal))
        {
            var doc = JsonNode.Parse(File.ReadAllText(path))!;
            foreach (var test in doc["tests"]!.AsArray())
            {
                data.Add(Path.GetFileNameWithoutExtension(path), (string)test!["name"]!);
            }
        }

        return data;
    }

    private static JsonObject Find(string category, string file, string name)
    {
        var doc = JsonNode.Parse(File.ReadAllText(CorpusPaths.Corpus("toon-spec", "tests", "fixtures", category, file + ".json")))!;
        return doc["tests"]!.AsArray().Select(t => t!.AsObject()).Single(t => (string)t["name"]! == name);
    }
}

using System.Text;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Benchmarks.StructuredOutput;

/// <summary>
/// The per-answer cost of structured-output enforcement on a typical ~1 KB answer: validation against a compiled
/// (cached) schema, the answer extraction from a chat envelope, and the free local repair of a fenced answer.
/// </summary>
[MemoryDiagnoser]
public class SchemaValidationBenchmarks
{
    private const string Schema = """
        {"type":"object","additionalProperties":false,"required":["id","customer","items","total","currency","status","notes"],
         "properties":{
           "id":{"type":"string","format":"uuid"},
           "customer":{"type":"object","additionalProperties":false,"required":["name","email"],"properties":{"name":{"type":"string"},"email":{"type":"string","format":"email"}}},
           "items":{"type":"array","maxItems":20,"items":{"type":"object","additionalProperties":false,"required":["sku","qty","price"],
             "properties":{"sku":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{4}$"},"qty":{"type":"integer","minimum":1},"price":{"type":"number","minimum":0}}}},
           "total":{"type":"number","minimum":0},
           "currency":{"enum":["EUR","USD","GBP"]},
           "status":{"enum":["draft","sent","paid"]},
           "notes":{"type":["string","null"],"maxLength":400}}}
        """;

    private CompiledSchema _compiled = null!;
    private string _answer = "";
    private string _fenced = "";
    private string _invalid = "";

    [GlobalSetup]
    public void Setup()
    {
        CompiledSchema.TryCompile(JsonNode.Parse(Schema)!.AsObject(), out var compiled, out _);
        _compiled = compiled!;
        var items = new StringBuilder();
        for (var i = 0; i < 9; i++)
        {
            items.Append(i == 0 ? "" : ",").Append($$"""{"sku":"ABC-{{1000 + i}}","qty":{{i + 1}},"price":{{(i * 3.5) + 1}}}""");
        }

        _answer = $$"""
            {"id":"6f1c2f0e-3b7a-4c1e-9a55-0d2a1b3c4d5e","customer":{"name":"Ada Lovelace","email":"ada@example.com"},"items":[{{items}}],
             "total":171.5,"currency":"EUR","status":"sent","notes":"Deliver to the back entrance; call ahead. Invoice covers the March order including the replacement parts requested on the phone."}
            """;
        _fenced = "Here is the invoice as JSON:\n\n```json\n" + _answer + "\n```\n\nLet me know if you need anything else.";
        _invalid = _answer.Replace("\"qty\":3", "\"qty\":0", StringComparison.Ordinal).Replace("\"EUR\"", "\"JPY\"", StringComparison.Ordinal);
    }

    /// <summary>Answer size in bytes (reported so the doc can quote it).</summary>
    public int AnswerBytes => Encoding.UTF8.GetByteCount(_answer);

    [Benchmark(Baseline = true)]
    public bool ValidateValid1Kb() => _compiled.Validate(_answer).IsValid;

    [Benchmark]
    public int ValidateInvalid1Kb() => _compiled.Validate(_invalid).Errors.Count;

    [Benchmark]
    public bool LocalRepairFencedThenValidate() => LocalJsonRepair.TryRepair(_fenced) is { } r && _compiled.Validate(r.Text).IsValid;
}

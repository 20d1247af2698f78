using System.Text.Json.Nodes;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.Core.Tests.StructuredOutput;

public sealed class SchemaValidatorTests
{
    private static CompiledSchema Person()
    {
        Assert.True(CompiledSchema.TryCompile(JsonNode.Parse(SchemaDiscoveryTests.Person)!.AsObject(), out var compiled, out var error), error);
        return compiled!;
    }

    [Fact]
    public void Validate_ValidAnswer_Valid()
    {
        Assert.True(Person().Validate("""{"name":"Ada","age":36}""").IsValid);
    }

    [Fact]
    public void Validate_WrongTypeAndMissingProperty_ErrorsCarryJsonPointers()
    {
        var result = Person().Validate("""{"age":"old"}""");

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Pointer == "/age");
        Assert.Contains(result.Errors, e => e.Pointer == "" && e.Message.Contains("name", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_NotJson_SingleRootParseError()
    {
        var result = Person().Validate("Sure! Here it is.");

        var error = Assert.Single(result.Errors);
        Assert.Equal("", error.Pointer);
        Assert.StartsWith("The answer is not valid JSON", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_Format_IsAsserted()
    {
        Assert.True(CompiledSchema.TryCompile(JsonNode.Parse("""{"type":"string","format":"date"}""")!.AsObject(), out var compiled, out _));

        Assert.False(compiled!.Validate("\"yesterday\"").IsValid);
        Assert.True(compiled.Validate("\"2026-01-31\"").IsValid);
    }

    [Theory]
    [InlineData("""{"type":12}""")]
    [InlineData("""{"minimum":"zero"}""")]
    [InlineData("""{"$ref":"#/$defs/missing"}""")]
    public void TryCompile_MalformedSchema_FalseWithMessage(string json)
    {
        Assert.False(CompiledSchema.TryCompile(JsonNode.Parse(json)!.AsObject(), out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void TryCompile_SameSchemaTwice_ReturnsCachedInstance()
    {
        var schema = JsonNode.Parse("""{"type":"object","properties":{"cached":{"type":"boolean"}}}""")!.AsObject();

        CompiledSchema.TryCompile(schema, out var a, out _);
        CompiledSchema.TryCompile((JsonObject)schema.DeepClone(), out var b, out _);

        Assert.Same(a, b);
    }

    [Fact]
    public void TryCompile_ManyDistinctSchemas_KeepsTheOneInUseCompiled()
    {
        // Before issue #11 the cache was cleared whole once it held 512 schemas, recompiling the ones in use.
        var inUse = JsonNode.Parse("""{"type":"object","properties":{"in_use_marker_3f9a":{"type":"integer"}}}""")!.AsObject();
        Assert.True(CompiledSchema.TryCompile(inUse, out var first, out _));

        for (var i = 0; i < 1500; i++)
        {
            var other = new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject { [$"p{i}_{Guid.NewGuid():N}"] = new JsonObject { ["type"] = "string" } },
            };
            Assert.True(CompiledSchema.TryCompile(other, out _, out _));
            if (i % 20 == 0)
            {
                Assert.True(CompiledSchema.TryCompile(inUse, out var again, out _));
                Assert.Same(first, again);
            }
        }
    }
}

public sealed class SchemaValidatorRegexTests
{
    // ^(a+)+$ against "aaaa…!" backtracks 2^n times: without a match timeout this never finishes.
    private const string Catastrophic = "^(a+)+$";
    private static readonly string Evil = new string('a', 40) + "!";

    private static CompiledSchema Compile(string json)
    {
        Assert.True(CompiledSchema.TryCompile(JsonNode.Parse(json)!.AsObject(), out var compiled, out var error), error);
        return compiled!;
    }

    private static async Task<(SchemaValidation Result, TimeSpan Elapsed)> ValidateWithin(CompiledSchema schema, string answer, TimeSpan limit)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var result = await Task.Run(() => schema.Validate(answer)).WaitAsync(limit);
        return (result, started.Elapsed);
    }

    [Fact]
    public async Task Validate_CatastrophicPattern_InvalidWithTimeoutErrorFast()
    {
        var schema = Compile($$$"""{"type":"object","properties":{"code":{"type":"string","pattern":"{{{Catastrophic}}}"}},"required":["code"]}""");

        var (result, elapsed) = await ValidateWithin(schema, $$"""{"code":"{{Evil}}"}""", TimeSpan.FromSeconds(10));

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors);
        Assert.Contains("did not finish within the gateway's limit", error.Message, StringComparison.Ordinal);
        Assert.Contains(Catastrophic, error.Message, StringComparison.Ordinal);
        Assert.True(elapsed < TimeSpan.FromSeconds(3), $"took {elapsed}");
    }

    [Fact]
    public async Task Validate_CatastrophicPatternUnderDraft07Schema_StillTimed()
    {
        // $schema must not select the library's own (untimed) dialect.
        var schema = Compile($$"""{"$schema":"http://json-schema.org/draft-07/schema#","type":"string","pattern":"{{Catastrophic}}"}""");

        var (result, _) = await ValidateWithin(schema, $"\"{Evil}\"", TimeSpan.FromSeconds(10));

        Assert.False(result.IsValid);
        Assert.Contains("did not finish", Assert.Single(result.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_CatastrophicPatternProperties_InvalidWithTimeoutError()
    {
        var schema = Compile($$$"""{"type":"object","patternProperties":{"{{{Catastrophic}}}":{"type":"integer"}},"additionalProperties":false}""");

        var (result, _) = await ValidateWithin(schema, $$"""{"{{Evil}}":1}""", TimeSpan.FromSeconds(10));

        Assert.False(result.IsValid);
        Assert.Contains("did not finish", Assert.Single(result.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_ManyCatastrophicStrings_BoundedByTheValidationBudget()
    {
        // 100 strings × 100 ms per match would be 10 s; the per-answer budget stops it after about 0.5 s.
        var schema = Compile($$$"""{"type":"array","items":{"type":"string","pattern":"{{{Catastrophic}}}"}}""");
        var answer = "[" + string.Join(',', Enumerable.Repeat($"\"{Evil}\"", 100)) + "]";

        var (result, elapsed) = await ValidateWithin(schema, answer, TimeSpan.FromSeconds(20));

        Assert.False(result.IsValid);
        Assert.True(elapsed < TimeSpan.FromSeconds(3), $"took {elapsed}");
    }

    [Fact]
    public void Validate_OrdinaryPatterns_StillWork()
    {
        var schema = Compile("""{"type":"object","properties":{"id":{"type":"string","pattern":"^[A-Z]{3}-\\d+$"}},"patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false}""");

        Assert.True(schema.Validate("""{"id":"ABC-12","x-note":"fine"}""").IsValid);
        Assert.False(schema.Validate("""{"id":"abc"}""").IsValid);
        Assert.False(schema.Validate("""{"x-note":3}""").IsValid);
        Assert.False(schema.Validate("""{"other":"no"}""").IsValid);
    }

    [Fact]
    public void TryCompile_InvalidPattern_FalseWithMessage()
    {
        Assert.False(CompiledSchema.TryCompile(JsonNode.Parse("""{"type":"string","pattern":"(unclosed"}""")!.AsObject(), out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void TryCompile_ManyLargeSchemas_CacheStaysWithinItsByteBound()
    {
        // 400 distinct ~40 KB schemas: an entry-count bound (512) would keep all of them (~16 MB of text, several
        // hundred MB compiled); the byte bound keeps at most two generations.
        var filler = new string('x', 40_000);
        for (var i = 0; i < 400; i++)
        {
            var schema = new JsonObject { ["type"] = "object", ["description"] = filler + i };
            Assert.True(CompiledSchema.TryCompile(schema, out _, out _));
            Assert.True(CompiledSchema.CachedBytes <= 2 * CompiledSchema.CacheGenerationBytes, $"cache holds {CompiledSchema.CachedBytes} bytes after {i + 1} schemas");
        }
    }
}

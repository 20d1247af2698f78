using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization;

/// <summary>
/// The pipeline's pre-check (<see cref="NoOpScan"/>) may skip the compact and dedupe stages only where they would
/// change nothing: every output with the pre-check equals the output without it and the recorded golden output.
/// </summary>
public sealed class NoOpScanTests
{
    private static readonly OptimizationPipeline _withoutPrecheck = new(Tokenizers, Counter) { SkipProvenNoOps = false };

    private static readonly string _goldenPath = Path.Combine(CorpusPaths.RepoRoot, "tests", "TokenGateway.Core.Tests", "Optimization", "Golden", "pipeline-outputs.tsv");

    private static readonly string _longBlock = string.Join(' ', Enumerable.Range(0, 90).Select(i => $"w{i * 7919 % 1000}"));

    [Fact]
    public void Run_GoldenCasesAsTheGatewayParsesThem_ProduceTheRecordedOutputsWithAndWithoutThePrecheck()
    {
        var expected = File.ReadAllLines(_goldenPath);
        var cases = PipelineGoldenOutputTests.Cases().ToList();
        Assert.Equal(expected.Length, cases.Count);
        var proven = 0;
        for (var i = 0; i < cases.Count; i++)
        {
            using (var request = Borrowed(cases[i].Dialect, cases[i].Json))
            {
                Assert.True(request.TryGetUntouchedRoot(out var root));
                proven += NoOpScan.Scan(root, cases[i].Policy.Dedupe.MinTokens) != ProvenNoOps.None ? 1 : 0;
                Assert.Equal(expected[i], PipelineGoldenOutputTests.Fingerprint(cases[i], request, Pipeline));
            }

            using (var request = Borrowed(cases[i].Dialect, cases[i].Json))
            {
                Assert.Equal(expected[i], PipelineGoldenOutputTests.Fingerprint(cases[i], request, _withoutPrecheck));
            }
        }

        Assert.True(proven > cases.Count / 10, $"the pre-check proved a stage unchanged in only {proven} of {cases.Count} cases");
    }

    [Fact]
    public void Scan_RandomRequests_ProvesOnlyStagesThatChangeNothing_AndThePipelineOutputIsUnchanged()
    {
        string[] pieces =
        [
            "word", " ", "  ", "\t", "\r", "\n", "\n", "\n\n", "\n\n\n", "{", "[", "}", "]", "`", "``", "```", "~~~", "~",
            "é", "\u00a0", "\u2003", "/", "\\", "\"", "\u0001", "😀", "{\"id\": 1, \"name\": \"alpha\", \"tags\": [\"a\", \"b\"], \"ok\": true}",
            _longBlock, _longBlock, "\n\n" + _longBlock + "\n\n", " " + _longBlock, "\u00a0" + _longBlock, _longBlock + "é",
        ];
        string[] benign = ["word", "Word.", " ", "\n", "\n\n", "é", "/", "`", "~", "\"", "\\", _longBlock, "\n\n" + _longBlock + "\n\n"];
        var random = new Random(17);
        var outcomes = new int[4]; // [compact proven, compact changed, dedupe proven, dedupe changed]
        for (var n = 0; n < 600; n++)
        {
            var from = random.Next(2) == 0 ? benign : pieces;
            string Text()
            {
                var sb = new StringBuilder();
                var parts = random.Next(0, 8);
                for (var p = 0; p < parts; p++)
                {
                    sb.Append(from[random.Next(from.Length)]);
                }

                return sb.ToString();
            }

            var anthropic = random.Next(4) == 0;
            var messages = new JsonArray();
            var count = random.Next(1, 5);
            for (var m = 0; m < count; m++)
            {
                var role = m % 2 == 0 ? "user" : "assistant";
                JsonNode content = random.Next(3) == 0
                    ? new JsonArray(new JsonObject { ["type"] = "text", ["text"] = Text() }, new JsonObject { ["type"] = "text", ["text"] = Text() })
                    : JsonValue.Create(Text());
                messages.Add(new JsonObject { ["role"] = role, ["content"] = content });
            }

            var body = new JsonObject { ["model"] = anthropic ? "claude-sonnet-4-5" : "gpt-4o", ["max_tokens"] = 256, ["messages"] = messages };
            if (anthropic)
            {
                body["system"] = Text();
            }
            else
            {
                messages.Insert(0, new JsonObject { ["role"] = "system", ["content"] = Text() });
            }

            if (random.Next(3) == 0)
            {
                var tool = new JsonObject { ["name"] = "lookup", ["description"] = Text(), ["input_schema"] = new JsonObject { ["type"] = "object" } };
                body["tools"] = new JsonArray(anthropic ? tool : new JsonObject { ["type"] = "function", ["function"] = tool });
            }

            var json = (random.Next(3)) switch
            {
                0 => body.ToJsonString(), // \u escapes for non-ASCII and HTML-sensitive characters
                1 => body.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }),
                _ => body.ToJsonString(new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }).Replace("/", "\\/"),
            };
            var dialect = anthropic ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;

            ProvenNoOps verdict;
            using (var request = Borrowed(dialect, json))
            {
                Assert.True(request.TryGetUntouchedRoot(out var root));
                verdict = NoOpScan.Scan(root, OptimizationPolicy.Default.Dedupe.MinTokens);
            }

            var compact = RunStage(new CompactStage(), dialect, json);
            var compactChanged = compact.Request.IsModified || compact.Saved != 0;
            Assert.False(verdict.HasFlag(ProvenNoOps.Compact) && compactChanged, $"compact changed a request the scan proved unchanged: {json}");
            outcomes[0] += verdict.HasFlag(ProvenNoOps.Compact) ? 1 : 0;
            outcomes[1] += compactChanged ? 1 : 0;

            var dedupe = RunStage(new DedupeStage(), dialect, json);
            var dedupeChanged = dedupe.Request.IsModified || dedupe.Saved != 0;
            Assert.False(verdict.HasFlag(ProvenNoOps.Dedupe) && dedupeChanged, $"dedupe changed a request the scan proved unchanged: {json}");
            outcomes[2] += verdict.HasFlag(ProvenNoOps.Dedupe) ? 1 : 0;
            outcomes[3] += dedupeChanged ? 1 : 0;

            var golden = new GoldenCase($"random/{n}", dialect, json, OptimizationPolicy.Default, new OutputLimits(1024, 4096, 0));
            using var fast = Borrowed(dialect, json);
            using var slow = Borrowed(dialect, json);
            Assert.Equal(PipelineGoldenOutputTests.Fingerprint(golden, slow, _withoutPrecheck), PipelineGoldenOutputTests.Fingerprint(golden, fast, Pipeline));
        }

        // Not vacuous: both verdicts occur, and the stages do change some of the generated requests.
        Assert.All(outcomes, o => Assert.True(o > 20, string.Join(", ", outcomes)));
    }

    [Theory]
    [InlineData("Plain prose.\nSecond line.\n\nNew paragraph, trailing newline.\n", true)]
    [InlineData("", true)]
    [InlineData("café — naïve", true)]
    [InlineData("a `b` and ``c`` and ~d~", true)]
    [InlineData("url http://x/y", true)]
    [InlineData("trailing space \nnext", false)]
    [InlineData("trailing tab\t\nnext", false)]
    [InlineData("windows line\r\nnext", false)]
    [InlineData("ends with space ", false)]
    [InlineData("ends with CR\r", false)]
    [InlineData("two blank lines\n\n\nnext", false)]
    [InlineData("```\ncode\n```", false)]
    [InlineData("~~~\ncode\n~~~", false)]
    [InlineData("data: {\"a\": 1}", false)]
    [InlineData("list: [1, 2]", false)]
    [InlineData("control \u0001 char", false)]
    public void Scan_CompactTriggerBoundaries_MatchTheStage(string text, bool proven)
    {
        var json = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }),
        }.ToJsonString(LlmRequestParser.WriteOptions);
        Assert.Equal(proven, Verdict(LlmDialect.OpenAIChat, json).HasFlag(ProvenNoOps.Compact));
        if (proven)
        {
            var (_, saved, request) = RunStage(new CompactStage(), LlmDialect.OpenAIChat, json);
            Assert.Equal(0, saved);
            Assert.False(request.IsModified);
        }
    }

    [Theory]
    [InlineData("Looks up a record.", true)]
    [InlineData("Line one.\nLine two.", true)]
    [InlineData("", true)]
    [InlineData(" Leading space.", false)]
    [InlineData("Trailing space. ", false)]
    [InlineData("\nLeading newline.", false)]
    [InlineData("Trailing newline.\n", false)]
    [InlineData("\u00a0Leading no-break space.", false)]
    [InlineData("Ends non-ASCII é", false)]
    [InlineData("Blank\n\n\nlines.", false)]
    [InlineData("Braces {are fine} in descriptions [x].", true)]
    public void Scan_ToolDescriptionBoundaries_MatchTheStage(string description, bool proven)
    {
        var json = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hello." }),
            ["tools"] = new JsonArray(new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = "lookup", ["description"] = description, ["parameters"] = new JsonObject { ["type"] = "object" } },
            }),
        }.ToJsonString(LlmRequestParser.WriteOptions);
        Assert.Equal(proven, Verdict(LlmDialect.OpenAIChat, json).HasFlag(ProvenNoOps.Compact));
    }

    [Fact]
    public void Scan_BlockRepeatedInAnotherMessage_IsNotProven_AndDedupeReplacesIt()
    {
        var json = Chat("First.\n\n" + _longBlock, "Again:\n\n" + _longBlock + "\n\nThanks.");
        Assert.False(Verdict(LlmDialect.OpenAIChat, json).HasFlag(ProvenNoOps.Dedupe));
        Assert.True(RunStage(new DedupeStage(), LlmDialect.OpenAIChat, json).Saved > 0);
    }

    [Fact]
    public void Scan_BlockRepeatedInTheSameMessage_OrTrimmedDifferently_IsDecidedAsTheStageDoes()
    {
        // Within one message dedupe never replaces; surrounding spaces and newlines are trimmed before comparing.
        var same = Chat("intro", _longBlock + "\n\n" + _longBlock);
        Assert.True(Verdict(LlmDialect.OpenAIChat, same).HasFlag(ProvenNoOps.Dedupe));
        Assert.Equal(0, RunStage(new DedupeStage(), LlmDialect.OpenAIChat, same).Saved);

        var trimmed = Chat("  " + _longBlock + "\n", "x\n\n\t" + _longBlock);
        Assert.False(Verdict(LlmDialect.OpenAIChat, trimmed).HasFlag(ProvenNoOps.Dedupe));
        Assert.True(RunStage(new DedupeStage(), LlmDialect.OpenAIChat, trimmed).Saved > 0);

        // A non-ASCII character at a block's edge might be whitespace a trim removes: undecided, the stage runs.
        var noBreak = Chat("\u00a0" + _longBlock, "x\n\n" + _longBlock);
        Assert.False(Verdict(LlmDialect.OpenAIChat, noBreak).HasFlag(ProvenNoOps.Dedupe));
        Assert.True(RunStage(new DedupeStage(), LlmDialect.OpenAIChat, noBreak).Saved > 0);
        var accent = Chat(_longBlock + " é", "x\n\n" + _longBlock + " é");
        Assert.False(Verdict(LlmDialect.OpenAIChat, accent).HasFlag(ProvenNoOps.Dedupe));
        Assert.True(RunStage(new DedupeStage(), LlmDialect.OpenAIChat, accent).Saved > 0);
        Assert.True(Verdict(LlmDialect.OpenAIChat, Chat("Voilà: " + _longBlock + " — fin.", "x\n\n" + _longBlock)).HasFlag(ProvenNoOps.Dedupe));
    }

    [Fact]
    public void Scan_EscapesWithMoreThanOneEncoding_AreNotDecided()
    {
        Assert.Equal(ProvenNoOps.None, Verdict(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"caf\u00e9"}]}"""));
        Assert.Equal(ProvenNoOps.Compact, Verdict(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"a\/b"}]}"""));
        Assert.Equal(ProvenNoOps.Compact | ProvenNoOps.Dedupe, Verdict(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"a/b"}]}"""));
    }

    [Fact]
    public void Run_AfterAFieldWasAdded_DoesNotUseTheDocument()
    {
        using var request = Borrowed(LlmDialect.OpenAIResponses, """{"model":"gpt-4o","input":[{"role":"user","content":"Hi."}]}""");
        request.AddStringField("instructions", "Answer.  \nBriefly.");
        Assert.False(request.TryGetUntouchedRoot(out _));
        var result = Pipeline.Run(request, Gpt4o, OptimizationPolicy.Default, default);
        Assert.True(request.IsModified); // the added instructions were compacted: the stage ran on the tree
        Assert.True(result.Stages.Single(s => s.Name == OptimizationStages.Compact).TokensSaved >= 0);
        Assert.Equal("Answer.\nBriefly.", (string?)request.Body["instructions"]);
    }

    private static string Chat(string system, string user) => new JsonObject
    {
        ["model"] = "gpt-4o",
        ["messages"] = new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = system },
            new JsonObject { ["role"] = "user", ["content"] = user }),
    }.ToJsonString(LlmRequestParser.WriteOptions);

    private static ProvenNoOps Verdict(LlmDialect dialect, string json)
    {
        using var request = Borrowed(dialect, json);
        Assert.True(request.TryGetUntouchedRoot(out var root));
        return NoOpScan.Scan(root, OptimizationPolicy.Default.Dedupe.MinTokens);
    }

    private static LlmRequest Borrowed(LlmDialect dialect, string json)
    {
        Assert.True(LlmRequestParser.TryParseBorrowed(dialect, Encoding.UTF8.GetBytes(json), out var request, out var error), error.Message);
        return request!;
    }
}

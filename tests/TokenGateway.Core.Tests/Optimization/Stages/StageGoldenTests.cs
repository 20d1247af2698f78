using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tests.Optimization.Corpus;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization.Stages;

/// <summary>Golden input → output examples per stage.</summary>
public sealed class StageGoldenTests
{
    [Fact]
    public void Compact_WhitespaceOutsideFences_CollapsedAndCodeUntouched()
    {
        var json = """{"model":"gpt-4o","messages":[{"role":"user","content":"Intro   \n\n\n\nText\t\n```py\ndef f():  \n\n\n    return 1  \n```\nEnd"}]}""";

        var (output, saved, _) = RunStage(new CompactStage(), LlmDialect.OpenAIChat, json);

        Assert.Equal("""{"model":"gpt-4o","messages":[{"role":"user","content":"Intro\n\nText\n```py\ndef f():  \n\n\n    return 1  \n```\nEnd"}]}""", output);
        Assert.True(saved > 0);
    }

    [Fact]
    public void Compact_PrettyJsonToolResult_MinifiedWhenToonDoesNotWin()
    {
        var pretty = new JsonObject { ["status"] = "ok", ["path"] = "/workspace/document", ["size"] = 1024, ["tags"] = new JsonArray("a", "b") }
            .ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        var body = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "stat it" },
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "c1", ["content"] = pretty }),
        };

        var (output, _, _) = RunStage(new CompactStage(), LlmDialect.OpenAIChat, body.ToJsonString());

        Assert.Contains("""{\"status\":\"ok\",\"path\":\"/workspace/document\",\"size\":1024,\"tags\":[\"a\",\"b\"]}""", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Compact_UniformRecords_SentAsToonBlockThatDecodesToTheData()
    {
        var rows = new JsonArray(Enumerable.Range(1, 12).Select(i => (JsonNode)new JsonObject { ["id"] = i, ["city"] = $"City {i}", ["temp"] = 10 + i * 0.5 }).ToArray());
        var text = "Weather:\n" + rows.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\nWhich city is warmest?";
        var body = new JsonObject { ["model"] = "gpt-4o", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };

        var (_, saved, request) = RunStage(new CompactStage(), LlmDialect.OpenAIChat, body.ToJsonString());

        var content = (string)request.Body["messages"]![0]!["content"]!;
        Assert.StartsWith("Weather:\n" + TextCompactor.ToonPrimer + "\n```toon\n[12]{id,city,temp}:\n  1,City 1,10.5\n", content, StringComparison.Ordinal);
        Assert.EndsWith("```\nWhich city is warmest?", content, StringComparison.Ordinal);
        Assert.True(saved > 100);
    }

    [Fact]
    public void Compact_ToolsParameter_NeverReformatted()
    {
        var json = """{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":"Finds things.","parameters":{ "type" : "object",  "properties" : {} }}}]}""";

        var (output, saved, request) = RunStage(new CompactStage(), LlmDialect.OpenAIChat, json);

        Assert.Equal(0, saved);
        Assert.False(request.IsModified);
        Assert.Equal(json, output);
    }

    [Fact]
    public void Dedupe_RepeatedToolOutput_LaterCopyBecomesReference()
    {
        var block = string.Join(" ", Enumerable.Range(0, 80).Select(i => $"line{i} value{i * 7}"));
        var body = new JsonObject
        {
            ["model"] = "gpt-4o",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "Context:\n\n" + block + "\n\nSummarize." },
                new JsonObject { ["role"] = "assistant", ["content"] = "Summary." },
                new JsonObject { ["role"] = "user", ["content"] = "Again:\n\n" + block + "\n\nShorter please." }),
        };

        var (_, saved, request) = RunStage(new DedupeStage(), LlmDialect.OpenAIChat, body.ToJsonString());

        var messages = request.Body["messages"]!.AsArray();
        Assert.Contains(block, (string)messages[0]!["content"]!, StringComparison.Ordinal);
        Assert.StartsWith("Again:\n\n[duplicate of an earlier block (", (string)messages[2]!["content"]!, StringComparison.Ordinal);
        Assert.EndsWith("— omitted]\n\nShorter please.", (string)messages[2]!["content"]!, StringComparison.Ordinal);
        Assert.True(saved > 200);
    }

    [Fact]
    public void Trim_OverBudget_ShortensOldToolResultsBeforeDroppingTurns()
    {
        var item = BenchmarkCorpus.OpenAIConversation(CorpusPaths.Corpus(), BenchmarkCorpus.BfclEntries(CorpusPaths.Corpus()).First(), turns: 4);
        var json = item.Body.ToJsonString(LlmRequestParser.WriteOptions);
        var full = Count(Parse(LlmDialect.OpenAIChat, json));
        var policy = OptimizationPolicy.Default with { Trim = new TrimOptions { MaxInputTokens = full - 200, KeepRecentUnits = 1 } };

        var (_, saved, request) = RunStage(new TrimStage(), LlmDialect.OpenAIChat, json, policy);

        var messages = request.Body["messages"]!.AsArray();
        Assert.Equal(item.Body["messages"]!.AsArray().Count, messages.Count); // nothing dropped: shortening was enough
        Assert.Contains(messages, m => ((string?)m!["content"])?.StartsWith("[tool result trimmed: ", StringComparison.Ordinal) == true);
        Assert.True(saved >= 200);
        Assert.True(Count(request) <= full - 200);
    }

    [Fact]
    public void Trim_UnderBudget_LeavesRequestUntouched()
    {
        var json = """{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}""";

        var (output, saved, request) = RunStage(new TrimStage(), LlmDialect.OpenAIChat, json);

        Assert.Equal((json, 0, false), (output, saved, request.IsModified));
    }

    [Fact]
    public void Curate_DocumentSections_KeepsMostRelevantWithinBudgetInOrder()
    {
        var filler = string.Join(" ", Enumerable.Repeat("unrelated gardening tips about tomatoes and soil", 60));
        var text = "<document index=\"1\">" + filler + "</document>\n" +
                   "<document index=\"2\">Prompt caching stores the prefix; cache_control marks a breakpoint. " + string.Join(" ", Enumerable.Repeat("caching", 20)) + "</document>\n" +
                   "<document index=\"3\">" + filler.Replace("tomatoes", "roses", StringComparison.Ordinal) + "</document>\n" +
                   "Question: How does prompt caching use cache_control breakpoints?";
        var body = new JsonObject { ["model"] = "gpt-4o", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };
        var policy = OptimizationPolicy.Default with { Curate = new CurateOptions { Enabled = true, MaxTokens = 400 } };

        var (_, saved, request) = RunStage(new CurateStage(), LlmDialect.OpenAIChat, body.ToJsonString(), policy);

        var content = (string)request.Body["messages"]![0]!["content"]!;
        Assert.Contains("<document index=\"2\">", content, StringComparison.Ordinal);
        Assert.DoesNotContain("<document index=\"1\">", content, StringComparison.Ordinal);
        Assert.EndsWith("Question: How does prompt caching use cache_control breakpoints?", content, StringComparison.Ordinal);
        Assert.True(saved > 500);
    }

    [Fact]
    public void Curate_LongDocument_KeepsTheRelevantPassageWithItsTagsAndGapMarkers()
    {
        string Paragraph(string topic, int n) => string.Join(" ", Enumerable.Range(0, 40).Select(i => $"{topic} note {n}.{i} about unrelated matters"));
        var paragraphs = Enumerable.Range(0, 6).Select(n => Paragraph("gardening", n)).ToList();
        paragraphs[3] = "Refunds are issued to the original card within five business days of the return being received.";
        var document = "<document index=\"1\">\n<source>https://example.com/policies</source>\n<document_content>\n"
            + string.Join("\n\n", paragraphs) + "\n</document_content>\n</document>\n";
        var other = "<document index=\"2\">\n" + Paragraph("weather", 9) + "\n</document>\n";
        var text = document + other + "Question: how many business days do refunds take?";
        var body = new JsonObject { ["model"] = "gpt-4o", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };
        var policy = OptimizationPolicy.Default with { Curate = new CurateOptions { Enabled = true, MaxTokens = 150 } };

        var (once, saved, request) = RunStage(new CurateStage(), LlmDialect.OpenAIChat, body.ToJsonString(), policy);

        var content = (string)request.Body["messages"]![0]!["content"]!;
        Assert.StartsWith("<document index=\"1\">\n<source>https://example.com/policies</source>\n<document_content>\n[…]\n", content, StringComparison.Ordinal);
        Assert.Contains(paragraphs[3], content, StringComparison.Ordinal);
        Assert.DoesNotContain("<document index=\"2\">", content, StringComparison.Ordinal); // no term in common with the question
        Assert.EndsWith("</document_content>\n</document>\nQuestion: how many business days do refunds take?", content, StringComparison.Ordinal);
        Assert.True(saved > 500, $"saved {saved}");
        var (twice, _, _) = RunStage(new CurateStage(), LlmDialect.OpenAIChat, once, policy);
        Assert.Equal(once, twice);
    }

    [Fact]
    public void Curate_AnthropicSearchResults_DropsIrrelevantBlocks()
    {
        JsonObject Result(string title, string text) => new()
        {
            ["type"] = "search_result", ["source"] = "https://example.com/" + title, ["title"] = title,
            ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = text }),
        };
        var noise = string.Join(" ", Enumerable.Repeat("weather report sunny skies", 80));
        var body = new JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["max_tokens"] = 100,
            ["messages"] = new JsonArray(new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(Result("a", noise), Result("billing", "Invoices are emailed monthly; refunds take 5 days."), Result("c", noise),
                    new JsonObject { ["type"] = "text", ["text"] = "How long do refunds take on invoices?" }),
            }),
        };
        var policy = OptimizationPolicy.Default with { Curate = new CurateOptions { Enabled = true, MaxTokens = 200 } };

        var (_, _, request) = RunStage(new CurateStage(), LlmDialect.AnthropicMessages, body.ToJsonString(), policy);

        var blocks = request.Body["messages"]![0]!["content"]!.AsArray();
        Assert.Equal(["billing", null], blocks.Select(b => (string?)b!["title"]));
    }

    [Fact]
    public void CacheHints_LongSystemAndTools_AddsTwoBreakpoints()
    {
        var item = BenchmarkCorpus.AnthropicConversation(CorpusPaths.Corpus(), BenchmarkCorpus.BfclEntries(CorpusPaths.Corpus()).First(), turns: 2);

        var (output, saved, request) = RunStage(new CacheHintStage(), LlmDialect.AnthropicMessages, item.Body.ToJsonString());

        Assert.Equal(0, saved);
        Assert.True(request.IsModified);
        Assert.NotNull(request.Body["tools"]!.AsArray()[^1]!["cache_control"]);
        Assert.NotNull(request.Body["system"]!.AsArray()[0]!["cache_control"]);
        Assert.Equal(2, output.Split("\"cache_control\"").Length - 1);
    }

    [Fact]
    public void CacheHints_ClientBreakpointPresent_LeavesRequestAlone()
    {
        var json = """{"model":"claude-sonnet-4-5","max_tokens":10,"system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}""";

        var (output, _, request) = RunStage(new CacheHintStage(), LlmDialect.AnthropicMessages, json);

        Assert.False(request.IsModified);
        Assert.Equal(json, output);
    }

    [Fact]
    public void Pipeline_ConsecutiveTurns_ProduceByteIdenticalRewrittenPrefixes()
    {
        var entry = BenchmarkCorpus.BfclEntries(CorpusPaths.Corpus()).Skip(3).First();
        var policy = OptimizationPolicy.Default with { Trim = new TrimOptions { MaxInputTokens = 4000 } };
        foreach (var anthropic in new[] { false, true })
        {
            string Rewrite(int turns)
            {
                var item = anthropic
                    ? BenchmarkCorpus.AnthropicConversation(CorpusPaths.Corpus(), entry, turns)
                    : BenchmarkCorpus.OpenAIConversation(CorpusPaths.Corpus(), entry, turns);
                var request = Parse(item.Endpoint, item.Body);
                Pipeline.Run(request, CardFor(request.Dialect), policy, default);
                return Serialize(request);
            }

            var turnN = Rewrite(3);
            var turnN1 = Rewrite(4);

            // Everything up to the latest user turn of turn N is repeated verbatim at the start of turn N+1.
            var prefix = turnN[..turnN.LastIndexOf("{\"role\":\"user\"", StringComparison.Ordinal)];
            Assert.StartsWith(prefix, turnN1, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void OutputCap_NoClientValue_AppliesDefaultThenCap()
    {
        var (output, _, _) = RunStage(new OutputCapStage(), LlmDialect.AnthropicMessages,
            """{"model":"claude-sonnet-4-5","max_tokens":99999,"messages":[{"role":"user","content":"hi"}]}""", limits: new OutputLimits(512, 4096, 0));
        var (defaulted, _, _) = RunStage(new OutputCapStage(), LlmDialect.OpenAIResponses,
            """{"model":"gpt-4o","input":"hi"}""", limits: new OutputLimits(512, 4096, 0));

        Assert.Contains("\"max_tokens\":4096", output, StringComparison.Ordinal);
        Assert.Contains("\"max_output_tokens\":512", defaulted, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputCap_CapWithoutDefaultOrClientValue_SendsTheCapLikeAdmission()
    {
        // Before issue #11 the stage left max_tokens absent here while admission sent the cap: the dry run and the
        // proxy disagreed. Both now decide through MaxTokensRule.
        var (output, _, request) = RunStage(new OutputCapStage(), LlmDialect.OpenAIChat,
            """{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}""", limits: new OutputLimits(null, 4096, 0));

        Assert.Equal(4096, request.MaxTokens);
        Assert.Equal(MaxTokensRule.Decide(null, null, 4096, CardFor(LlmDialect.OpenAIChat)).ToSend, request.MaxTokens);
        Assert.Contains("4096", output, StringComparison.Ordinal);
    }
}

using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tests.Optimization.Corpus;
using Xunit.Abstractions;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization.Stages;

/// <summary><c>trim.staleToolResults</c>: old tool results become a marker even under budget, byte-stable across turns.</summary>
public sealed class StaleToolResultsTests(ITestOutputHelper output)
{
    private static readonly OptimizationPolicy _stale = OptimizationPolicy.Default with
    {
        Trim = new TrimOptions { StaleToolResults = new StaleToolResultsOptions { KeepRecent = 2, MinTokens = 50 } },
    };

    private static string LongResult(int step) =>
        string.Join("\n", Enumerable.Range(0, 40).Select(i => $"row {i}: sensor-{step} reading {i * 13 % 97} at position {i * 7}"));

    private static JsonObject ChatConversation(int steps)
    {
        var messages = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "You read sensors." }, new JsonObject { ["role"] = "user", ["content"] = "Read all sensors one by one." });
        for (var s = 0; s < steps; s++)
        {
            messages.Add(new JsonObject
            {
                ["role"] = "assistant", ["content"] = null,
                ["tool_calls"] = new JsonArray(new JsonObject
                {
                    ["id"] = $"call_{s}", ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = "read_sensor", ["arguments"] = $"{{\"id\":{s}}}" },
                }),
            });
            messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = $"call_{s}", ["content"] = s == 1 ? "ok" : LongResult(s) });
        }

        return new JsonObject { ["model"] = "gpt-4o", ["messages"] = messages };
    }

    [Fact]
    public void Apply_UnderBudget_ElidesResultsOlderThanKeepRecentToolTurnsWithNamedMarker()
    {
        var json = ChatConversation(6).ToJsonString();
        var before = Count(Parse(LlmDialect.OpenAIChat, json));

        var (_, saved, request) = RunStage(new TrimStage(), LlmDialect.OpenAIChat, json, _stale);

        var results = request.Body["messages"]!.AsArray().Where(m => (string?)m!["role"] == "tool").Select(m => (string)m!["content"]!).ToList();
        var tokens = Tokenizers.Count("o200k_base", LongResult(0));
        Assert.Equal(StaleToolResults.Marker("read_sensor", "call_0", tokens), results[0]);
        Assert.Equal($"[stale tool result elided: read_sensor (call_0), {tokens} tokens]", results[0]);
        Assert.Equal("ok", results[1]); // under minTokens
        Assert.StartsWith("[stale tool result elided: read_sensor (call_2), ", results[2], StringComparison.Ordinal);
        Assert.StartsWith("[stale tool result elided: read_sensor (call_3), ", results[3], StringComparison.Ordinal);
        Assert.Equal(LongResult(4), results[4]); // the newest two tool turns are kept
        Assert.Equal(LongResult(5), results[5]);
        Assert.Equal(before - Count(request), saved);
        Assert.True(saved > 3 * (tokens - 30));
        ConversationInvariants.AssertValid(request);
    }

    [Fact]
    public void Apply_StaleResultsOff_UnderBudgetRequestUntouched()
    {
        var json = ChatConversation(6).ToJsonString();

        var (output, saved, request) = RunStage(new TrimStage(), LlmDialect.OpenAIChat, json);

        Assert.Equal(0, saved);
        Assert.False(request.IsModified);
        Assert.Equal(json, output);
    }

    [Fact]
    public void Apply_ResponsesAndAnthropic_ElideByToolTurnWithPairsIntact()
    {
        var input = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Read the sensors." });
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Read the sensors." });
        for (var s = 0; s < 4; s++)
        {
            // Two parallel calls per step: one tool turn.
            input.Add(new JsonObject { ["type"] = "function_call", ["call_id"] = $"fc_{s}a", ["name"] = "read_sensor", ["arguments"] = "{}" });
            input.Add(new JsonObject { ["type"] = "function_call", ["call_id"] = $"fc_{s}b", ["name"] = "read_gauge", ["arguments"] = "{}" });
            input.Add(new JsonObject { ["type"] = "function_call_output", ["call_id"] = $"fc_{s}a", ["output"] = LongResult(s) });
            input.Add(new JsonObject { ["type"] = "function_call_output", ["call_id"] = $"fc_{s}b", ["output"] = LongResult(s + 10) });
            messages.Add(new JsonObject
            {
                ["role"] = "assistant",
                ["content"] = new JsonArray(
                    new JsonObject { ["type"] = "tool_use", ["id"] = $"tu_{s}a", ["name"] = "read_sensor", ["input"] = new JsonObject() },
                    new JsonObject { ["type"] = "tool_use", ["id"] = $"tu_{s}b", ["name"] = "read_gauge", ["input"] = new JsonObject() }),
            });
            messages.Add(new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(
                    new JsonObject { ["type"] = "tool_result", ["tool_use_id"] = $"tu_{s}a", ["content"] = LongResult(s) },
                    new JsonObject
                    {
                        ["type"] = "tool_result", ["tool_use_id"] = $"tu_{s}b",
                        ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = LongResult(s + 10) }),
                    }),
            });
        }

        var responses = new JsonObject { ["model"] = "gpt-4o", ["input"] = input }.ToJsonString();
        var anthropic = new JsonObject { ["model"] = "claude-sonnet-4-5", ["max_tokens"] = 100, ["messages"] = messages }.ToJsonString();

        var (_, responsesSaved, r) = RunStage(new TrimStage(), LlmDialect.OpenAIResponses, responses, _stale);
        var (_, anthropicSaved, a) = RunStage(new TrimStage(), LlmDialect.AnthropicMessages, anthropic, _stale);

        var outputs = r.Body["input"]!.AsArray().Where(i => (string?)i!["type"] == "function_call_output").Select(i => (string)i!["output"]!).ToList();
        Assert.StartsWith("[stale tool result elided: read_sensor (fc_0a), ", outputs[0], StringComparison.Ordinal);
        Assert.StartsWith("[stale tool result elided: read_gauge (fc_1b), ", outputs[3], StringComparison.Ordinal);
        Assert.Equal(LongResult(2), outputs[4]);
        Assert.Equal(LongResult(13), outputs[7]);
        var blocks = a.Body["messages"]!.AsArray().SelectMany(m => m!["content"] as JsonArray ?? []).Where(b => (string?)b!["type"] == "tool_result").ToList();
        Assert.Equal(8, blocks.Count);
        Assert.StartsWith("[stale tool result elided: read_gauge (tu_0b), ", (string)blocks[1]!["content"]!, StringComparison.Ordinal);
        Assert.Equal(LongResult(12), (string)blocks[5]!["content"]![0]!["text"]!);
        Assert.True(responsesSaved > 0 && anthropicSaved > 0);
        ConversationInvariants.AssertValid(a);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Apply_ConsecutiveTurnsOfOneConversation_OldMarkersAreByteIdentical(bool anthropic)
    {
        var entry = BenchmarkCorpus.BfclEntries(CorpusPaths.Corpus()).First(e => e["question"]!.AsArray().Count >= 6);
        var dialect = anthropic ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;
        var policy = OptimizationPolicy.Default with { Trim = new TrimOptions { StaleToolResults = new StaleToolResultsOptions { KeepRecent = 2, MinTokens = 100 } } };
        JsonArray Turn(int turns)
        {
            var item = anthropic
                ? BenchmarkCorpus.AnthropicConversation(CorpusPaths.Corpus(), entry, turns)
                : BenchmarkCorpus.OpenAIConversation(CorpusPaths.Corpus(), entry, turns);
            var (_, _, request) = RunStage(new TrimStage(), dialect, item.Body.ToJsonString(LlmRequestParser.WriteOptions), policy);
            return request.Body["messages"]!.AsArray();
        }

        var earlier = Turn(5);
        var later = Turn(6);

        var firstDifference = Enumerable.Range(0, earlier.Count).First(i => earlier[i]!.ToJsonString() != later[i]!.ToJsonString());
        Assert.True(firstDifference > 2, $"the cached prefix broke at message {firstDifference}");
        var markers = 0;
        for (var i = 0; i < earlier.Count - 1; i++)
        {
            var text = earlier[i]!.ToJsonString();
            if (text.Contains("[stale tool result elided:", StringComparison.Ordinal))
            {
                markers++;
                Assert.Equal(text, later[i]!.ToJsonString()); // an elided result stays byte-identical in the next turn
            }
            else if (text != later[i]!.ToJsonString())
            {
                Assert.Contains("[stale tool result elided:", later[i]!.ToJsonString(), StringComparison.Ordinal); // only newly stale results differ
            }
        }

        Assert.True(markers > 0);
    }

    [Fact]
    public void Run_BfclAgentConversations_StaleResultsSaveTokensUnderBudget()
    {
        var conversations = BenchmarkCorpus.ToolConversations(CorpusPaths.Corpus(), 200).ToList();
        var report = new StringBuilder("keepRecent | minTokens | tokens sent | saved vs received | saved by trim\n");
        long received = 0, sentDefault = 0;
        var baseline = new List<int>();
        foreach (var item in conversations)
        {
            var request = Parse(item.Endpoint, item.Body);
            var result = Pipeline.Run(request, CardFor(request.Dialect), OptimizationPolicy.Default, default);
            received += result.TokensReceived;
            sentDefault += result.TokensSent;
            baseline.Add(result.TokensSent);
        }

        report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"off (default policy) | — | {sentDefault:N0} | {1 - ((double)sentDefault / received):P1} | 0"));
        var previous = sentDefault;
        foreach (var keepRecent in new[] { 4, 2, 1 })
        {
            var policy = OptimizationPolicy.Default with { Trim = new TrimOptions { StaleToolResults = new StaleToolResultsOptions { KeepRecent = keepRecent } } };
            long sent = 0, trimmed = 0;
            for (var i = 0; i < conversations.Count; i++)
            {
                var request = Parse(conversations[i].Endpoint, conversations[i].Body);
                var result = Pipeline.Run(request, CardFor(request.Dialect), policy, default);
                Assert.True(result.TokensSent <= baseline[i], conversations[i].Id);
                ConversationInvariants.AssertValid(request);
                sent += result.TokensSent;
                trimmed += result.Stages.Single(s => s.Name == "trim").TokensSaved;
            }

            Assert.True(sent < previous, $"keepRecent {keepRecent} saved nothing more");
            previous = sent;
            report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{keepRecent} | 200 | {sent:N0} | {1 - ((double)sent / received):P1} | {trimmed:N0}"));
        }

        output.WriteLine($"{conversations.Count} BFCL conversations, {received:N0} tokens received");
        output.WriteLine(report.ToString());
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "tokengateway-stale-results.txt"), report.ToString());
    }
}

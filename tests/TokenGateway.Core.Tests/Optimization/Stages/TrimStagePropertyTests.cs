using CsCheck;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tests.Optimization.Corpus;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization.Stages;

/// <summary>Trimming invariants as properties over BFCL multi-turn histories (OpenAI and Anthropic shapes).</summary>
public sealed class TrimStagePropertyTests
{
    private static readonly List<System.Text.Json.Nodes.JsonObject> _entries = BenchmarkCorpus.BfclEntries(CorpusPaths.Corpus()).ToList();

    [Fact]
    public void Apply_RandomHistoryAndBudget_KeepsPairsOrderUserStartAndBudget()
    {
        var trimmedCount = 0;
        Gen.Select(Gen.Int[0, _entries.Count - 1], Gen.Int[2, 8], Gen.Int[2500, 12000], Gen.Bool)
            .Sample((index, turns, budget, anthropic) =>
            {
                var item = anthropic
                    ? BenchmarkCorpus.AnthropicConversation(CorpusPaths.Corpus(), _entries[index], turns)
                    : BenchmarkCorpus.OpenAIConversation(CorpusPaths.Corpus(), _entries[index], turns);
                var dialect = anthropic ? LlmDialect.AnthropicMessages : LlmDialect.OpenAIChat;
                var policy = OptimizationPolicy.Default with { Trim = new TrimOptions { MaxInputTokens = budget } };
                var json = item.Body.ToJsonString(LlmRequestParser.WriteOptions);
                var original = Parse(dialect, json);
                var pinnedFloor = MinimumAfterTrim(original);

                var (_, saved, trimmed) = RunStage(new TrimStage(), dialect, json, policy);
                if (saved > 0)
                {
                    Interlocked.Increment(ref trimmedCount);
                }

                ConversationInvariants.AssertValid(trimmed);
                AssertOrderKept(original, trimmed);
                var sent = Count(trimmed);
                Assert.True(sent <= budget || sent <= pinnedFloor, $"{sent} tokens over budget {budget} (floor {pinnedFloor})");
            }, iter: 150, threads: 1); // ~15% of random histories exceed their budget: 150 samples make "fewer than 10 trimmed" vanishingly rare

        Assert.True(trimmedCount >= 10, $"only {trimmedCount} of 150 histories needed trimming");
    }

    /// <summary>Kept messages are a subsequence of the original, in order (tool results may be shortened).</summary>
    private static void AssertOrderKept(LlmRequest original, LlmRequest trimmed)
    {
        var before = original.Body["messages"]!.AsArray().Select(Key).ToList();
        var after = trimmed.Body["messages"]!.AsArray().Select(Key).ToList();
        var i = 0;
        foreach (var key in after)
        {
            while (i < before.Count && before[i] != key)
            {
                i++;
            }

            Assert.True(i < before.Count, $"message '{key}' is out of order or invented");
            i++;
        }

        Assert.Equal(before[^1], after[^1]); // the latest turn is always kept
    }

    /// <summary>Identity of a message that survives shortening: role plus call ids or the first text.</summary>
    private static string Key(System.Text.Json.Nodes.JsonNode? message)
    {
        var role = (string?)message!["role"];
        if (message["tool_call_id"] is { } id)
        {
            return $"{role}:{id}";
        }

        var content = message["content"];
        var text = content is System.Text.Json.Nodes.JsonArray blocks
            ? string.Join("|", blocks.Select(b => (string?)b!["id"] ?? (string?)b["tool_use_id"] ?? (string?)b["text"]))
            : (string?)content;
        return $"{role}:{text}:{message["tool_calls"]?.ToJsonString()}";
    }

    /// <summary>What can never be trimmed: tools, system and the latest user turn (plus a small allowance).</summary>
    private static int MinimumAfterTrim(LlmRequest request)
    {
        var copy = Parse(request.Dialect, Serialize(request));
        var messages = copy.Body["messages"]!.AsArray();
        var keep = messages.Where(m => (string?)m!["role"] == "system").Select(m => m!.DeepClone()).Append(messages[^1]!.DeepClone()).ToList();
        messages.Clear();
        foreach (var m in keep)
        {
            messages.Add(m);
        }

        return Count(copy) + 600;
    }
}

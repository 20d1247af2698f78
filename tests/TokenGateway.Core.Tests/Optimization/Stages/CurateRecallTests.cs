using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Optimization;
using TokenGateway.Core.Optimization.Stages;
using TokenGateway.Core.Tests.Optimization.Corpus;
using static TokenGateway.Core.Tests.Optimization.OptimizationTestKit;

namespace TokenGateway.Core.Tests.Optimization.Stages;

/// <summary>Recall of gold chunks vs tokens sent on the claude-cookbooks RAG set (100 questions, 20 candidates each).</summary>
public sealed class CurateRecallTests
{
    [Fact]
    public void Apply_RagEvalSet_RecallGrowsWithBudgetAndStaysHighAtQuarterTokens()
    {
        var cases = BenchmarkCorpus.RagCases(CorpusPaths.Corpus(), 20).ToList();
        var report = new StringBuilder("budget|recall|all gold kept|tokens sent|of received\n");
        var previous = 0.0;
        foreach (var budget in new[] { 1000, 2000, 4000, 8000, 16000 })
        {
            double recall = 0, allKept = 0;
            long received = 0, sent = 0;
            foreach (var (question, chunks, gold) in cases)
            {
                var text = string.Join("\n", chunks.Select(c => $"<document source=\"{c["chunk_link"]}\">\n{c["text"]}\n</document>")) + "\n\nQuestion: " + question;
                var body = new JsonObject { ["model"] = "gpt-4o", ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };
                var policy = OptimizationPolicy.Default with { Curate = new CurateOptions { Enabled = true, MaxTokens = budget } };
                var json = body.ToJsonString(LlmRequestParser.WriteOptions);
                received += Count(Parse(LlmDialect.OpenAIChat, json));

                var (_, _, request) = RunStage(new CurateStage(), LlmDialect.OpenAIChat, json, policy);

                sent += Count(request);
                var kept = (string)request.Body["messages"]![0]!["content"]!;
                var hits = gold.Count(g => kept.Contains($"source=\"{g}\"", StringComparison.Ordinal));
                recall += (double)hits / gold.Count;
                allKept += hits == gold.Count ? 1 : 0;
            }

            recall /= cases.Count;
            Assert.True(recall >= previous - 1e-9, $"recall fell at budget {budget}");
            previous = recall;
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{budget}|{recall:F3}|{allKept / cases.Count:P0}|{sent / cases.Count}|{100.0 * sent / received:F0}%"));
        }

        File.WriteAllText(Path.Combine(Path.GetTempPath(), "tokengateway-curate-recall.txt"), report.ToString());
        Assert.True(previous > 0.9, $"recall at the largest budget is {previous:F3}");
    }
}

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

/// <summary>
/// Tool recall (the function the reference answer calls in a turn is among the tools sent) against tool-definition
/// tokens saved, over <c>maxTools</c>, on every turn of the 200 BFCL multi-turn conversations.
/// Print the curve: <c>dotnet test tests/TokenGateway.Core.Tests -c Release --filter "FullyQualifiedName~ToolSelectionRecallTests" --logger "console;verbosity=detailed"</c>.
/// </summary>
public sealed class ToolSelectionRecallTests(ITestOutputHelper output)
{
    internal static readonly int[] Budgets = [2, 4, 6, 8, 10, 12, 16, 20, 24];

    [Fact]
    public void Apply_BfclMultiTurn_RecallGrowsWithMaxToolsAndSavesToolTokens()
    {
        var turns = BfclTurns.All(CorpusPaths.Corpus()).ToList();
        var rows = Curve(turns);
        var report = new StringBuilder("maxTools | call recall | turns with every call | tool tokens sent | tool tokens saved | request tokens saved\n");
        foreach (var row in rows)
        {
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{row.MaxTools} | {row.CallRecall:F3} | {row.TurnRecall:P1} | {row.ToolTokensSent:N0} of {row.ToolTokensReceived:N0} | {row.ToolSaved:P1} | {row.RequestSaved:P1}"));
        }

        output.WriteLine($"{turns.Count} turns, {turns.Sum(t => t.Expected.Count)} expected calls");
        output.WriteLine(report.ToString());
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "tokengateway-tool-recall.txt"), report.ToString());

        for (var i = 1; i < rows.Count; i++)
        {
            Assert.True(rows[i].CallRecall >= rows[i - 1].CallRecall - 1e-9, $"recall fell at maxTools {rows[i].MaxTools}");
            Assert.True(rows[i].ToolSaved <= rows[i - 1].ToolSaved + 1e-9, $"savings grew at maxTools {rows[i].MaxTools}");
        }

        // Floors measured on this corpus (docs/optimization.md): 0.912 / 38.7 % at the default 16, 0.797 / 67.3 % at 8.
        var chosen = rows.Single(r => r.MaxTools == new ToolsOptions().MaxTools);
        Assert.True(chosen.CallRecall >= 0.91, $"call recall at the default maxTools is {chosen.CallRecall:F3}");
        Assert.True(chosen.ToolSaved >= 0.38, $"tool tokens saved at the default maxTools: {chosen.ToolSaved:P1}");
        var eight = rows.Single(r => r.MaxTools == 8);
        Assert.True(eight.CallRecall >= 0.79 && eight.ToolSaved >= 0.67, $"maxTools 8: recall {eight.CallRecall:F3}, saved {eight.ToolSaved:P1}");
    }

    internal sealed record Row(int MaxTools, double CallRecall, double TurnRecall, long ToolTokensReceived, long ToolTokensSent, double ToolSaved, double RequestSaved);

    internal static List<Row> Curve(IReadOnlyList<BfclTurn> turns)
    {
        var rows = new List<Row>();
        var baseline = turns.Select(t =>
        {
            var json = t.Body.ToJsonString(LlmRequestParser.WriteOptions);
            var full = Count(Parse(LlmDialect.OpenAIChat, json));
            return (Json: json, Full: full, Tools: full - WithoutTools(t.Body));
        }).ToList();
        foreach (var maxTools in Budgets)
        {
            var policy = OptimizationPolicy.Default with { Tools = new ToolsOptions { Enabled = true, MaxTools = maxTools } };
            long hits = 0, expected = 0, fullTurns = 0, toolsReceived = 0, toolsSent = 0, received = 0, sent = 0;
            for (var i = 0; i < turns.Count; i++)
            {
                var (_, saved, request) = RunStage(new ToolSelectionStage(), LlmDialect.OpenAIChat, baseline[i].Json, policy);
                var names = request.Body["tools"]!.AsArray().Select(x => (string)x!["function"]!["name"]!).ToHashSet(StringComparer.Ordinal);
                var found = turns[i].Expected.Count(names.Contains);
                hits += found;
                expected += turns[i].Expected.Count;
                fullTurns += found == turns[i].Expected.Count ? 1 : 0;
                toolsReceived += baseline[i].Tools;
                toolsSent += baseline[i].Tools - saved;
                received += baseline[i].Full;
                sent += baseline[i].Full - saved;
            }

            rows.Add(new Row(maxTools, (double)hits / expected, (double)fullTurns / turns.Count, toolsReceived, toolsSent,
                1 - ((double)toolsSent / toolsReceived), 1 - ((double)sent / received)));
        }

        return rows;
    }

    private static int WithoutTools(JsonObject body)
    {
        var copy = body.DeepClone().AsObject();
        copy.Remove("tools");
        return Count(Parse(LlmDialect.OpenAIChat, copy.ToJsonString(LlmRequestParser.WriteOptions)));
    }
}

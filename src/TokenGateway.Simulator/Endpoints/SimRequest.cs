using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using TokenGateway.Core.Dialects;
using TokenGateway.Simulator.Faults;
using TokenGateway.Simulator.Generation;
using TokenGateway.Simulator.Prompts;

namespace TokenGateway.Simulator.Endpoints;

/// <summary>One validated request to a generating route, with everything the responders need.</summary>
internal sealed class SimRequest
{
    public required HttpContext Http { get; init; }
    public required LlmDialect Dialect { get; init; }
    public required JsonObject Body { get; init; }
    public required string Model { get; init; }
    public required ModelProfile Profile { get; init; }
    public required FaultPlan Faults { get; init; }
    public required ulong Seed { get; init; }
    public required SimulatorOptions Options { get; init; }
    public required TimeProvider Time { get; init; }
    public required PromptCache Cache { get; init; }

    public CancellationToken Aborted => Http.RequestAborted;

    public bool IsAnthropic => Dialect.IsAnthropic();

    public bool Stream => Body["stream"] is JsonValue v && v.GetValueKind() == JsonValueKind.True;

    public long CreatedUnix => Time.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>The exact encoding output text is built and counted with.</summary>
    public string OutputEncoding => TokenCounting.OutputEncoding(Profile.Encoding);

    public int? ReadInt(string name) =>
        Body[name] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out var d) ? (int)Math.Clamp(d, 0, int.MaxValue) : null;

    /// <summary>Reasoning tokens for reasoning models, scaled by the requested effort.</summary>
    public int ReasoningTokens(string? effort)
    {
        if (!Profile.IsReasoning)
        {
            return 0;
        }

        var medium = Options.ReasoningTokens;
        return effort switch
        {
            "none" or "minimal" => 0,
            "low" => medium / 2,
            "high" or "xhigh" => medium * 2,
            _ => medium,
        };
    }

    /// <summary>Common answer parameters; dialects fill in schema, tool and cap.</summary>
    public AnswerRequest NewAnswerRequest() => new()
    {
        OutputEncoding = OutputEncoding,
        Seed = Seed,
        Faults = Faults,
        DefaultOutputTokens = Options.DefaultOutputTokens,
    };
}

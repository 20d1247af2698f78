using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using TokenGateway.Core.Budgets;
using TokenGateway.Core.StructuredOutput;

namespace TokenGateway.StructuredOutput;

/// <summary>Per-request structured-output state set by <see cref="StructuredOutputMiddleware"/> for the response hook.</summary>
internal sealed class StructuredOutputFeature(EnforcedSchema enforced, CompiledSchema compiled, StructuredOutputPolicy policy)
{
    public EnforcedSchema Enforced { get; } = enforced;
    public CompiledSchema Compiled { get; } = compiled;
    public StructuredOutputPolicy Policy { get; } = policy;

    /// <summary>Buffer mode: the client asked for a stream, the upstream call was made without one.</summary>
    public bool ReplayAsSse { get; init; }

    /// <summary>Buffer mode: whether the client asked for OpenAI's usage chunk.</summary>
    public bool ClientIncludeUsage { get; init; }
}

/// <summary>Parses each policy's raw <c>structuredOutput</c> section once and caches it by section instance.</summary>
internal sealed class StructuredOutputPolicies
{
    private readonly ConditionalWeakTable<JsonObject, StructuredOutputPolicy> _parsed = [];

    public StructuredOutputPolicy For(EffectivePolicy? policy)
    {
        if (policy?.StructuredOutput is not { } section)
        {
            return StructuredOutputPolicy.Default;
        }

        // Errors were reported when the policy was written; unknown fields are ignored here.
        return _parsed.GetValue(section, static s => StructuredOutputPolicy.FromJson(s, out _));
    }
}

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

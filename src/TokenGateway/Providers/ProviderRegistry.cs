using System.Collections.Frozen;
using Microsoft.Extensions.Options;
using TokenGateway.Hosting;

namespace TokenGateway.Providers;

/// <summary>A provider as resolved at startup: where it is, how to authenticate, and its key (from the environment).</summary>
internal sealed record ResolvedProvider(string Id, ProviderOptions Options, IReadOnlyList<string> Destinations, string? ApiKey, bool Simulated = false)
{
    public ProviderType Type => Options.Type;

    /// <summary>The provider's header allowlists and credential style, built once.</summary>
    public Proxy.Upstream.UpstreamHeaders Headers { get; } = Proxy.Upstream.UpstreamHeaders.For(Options, Simulated);
}

/// <summary>Resolves providers once: reads keys from the environment and decides whether the simulator serves.</summary>
internal sealed partial class ProviderRegistry : IAsyncDisposable
{
    private readonly FrozenDictionary<string, ResolvedProvider> _providers;
    private readonly EmbeddedSimulator? _simulator;

    public ProviderRegistry(IOptions<ProvidersOptions> options, IOptions<GatewayOptions> gateway, ILogger<ProviderRegistry> logger)
    {
        var configured = options.Value.Providers;
        var anyKey = configured.Values.Any(p => !string.IsNullOrEmpty(p.ApiKeyEnv) && !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(p.ApiKeyEnv)));
        UsesSimulator = gateway.Value.Simulator switch
        {
            SimulatorMode.Always => true,
            SimulatorMode.Never => false,
            _ => !anyKey,
        };

        if (UsesSimulator)
        {
            _simulator = EmbeddedSimulator.Start();
            LogSimulatorMode(logger, _simulator.Address);
        }

        var map = new Dictionary<string, ResolvedProvider>(StringComparer.OrdinalIgnoreCase);
        foreach (var (id, p) in configured)
        {
            if (UsesSimulator)
            {
                // Every model routes to the built-in simulator; provider types keep their wire format (the
                // simulator speaks all of them) so the first run exercises the same code paths as production.
                map[id] = new ResolvedProvider(id, p, [_simulator!.Address], "simulator-key", Simulated: true);
                continue;
            }

            var key = string.IsNullOrEmpty(p.ApiKeyEnv) ? null : Environment.GetEnvironmentVariable(p.ApiKeyEnv);
            if (p.Destinations.Count == 0)
            {
                throw new InvalidOperationException($"Provider '{id}' has no destinations (Providers:{id}:Destinations).");
            }

            map[id] = new ResolvedProvider(id, p, p.Destinations, string.IsNullOrEmpty(key) ? null : key);
        }

        _providers = map.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>True when the built-in simulator serves every model.</summary>
    public bool UsesSimulator { get; }

    public IEnumerable<ResolvedProvider> All => _providers.Values;

    public bool TryGet(string id, out ResolvedProvider provider) => _providers.TryGetValue(id, out provider!);

    public ValueTask DisposeAsync() => _simulator?.DisposeAsync() ?? ValueTask.CompletedTask;

    [LoggerMessage(2100, LogLevel.Warning, "No provider key configured: every model routes to the built-in simulator at {Address}")]
    private static partial void LogSimulatorMode(ILogger logger, string address);
}

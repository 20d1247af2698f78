using System.Collections.Frozen;
using System.Text;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Resilience;
using TokenGateway.Hosting;

namespace TokenGateway.Providers;

/// <summary>One provider key: a safe label and the variable it came from; the secret never appears in <see cref="ToString"/>.</summary>
internal sealed class ProviderKey(string label, string environmentVariable, string secret)
{
    /// <summary>Safe label, <c>{provider}#{index}</c> (the same as <see cref="KeySelector.Labels"/>).</summary>
    public string Label { get; } = label;

    /// <summary>The environment variable that held the key.</summary>
    public string EnvironmentVariable { get; } = environmentVariable;

    /// <summary>The key itself; only the request transform reads it.</summary>
    public string Secret { get; } = secret;

    /// <summary>The <c>Authorization</c> value for Bearer-style providers, built once per key rather than per request.</summary>
    public string BearerAuthorization { get; } = "Bearer " + secret;

    public override string ToString() => $"{Label} (from {EnvironmentVariable})";
}

/// <summary>A provider as resolved at startup: where it is, how to authenticate, and its keys (from the environment).</summary>
/// <remarks>
/// <see cref="ApiKey"/> is the first key (the default) so single-key callers keep working; <see cref="Keys"/> and
/// <see cref="KeySelector"/> serve several keys. The printed form names keys by label only.
/// </remarks>
internal sealed record ResolvedProvider(string Id, ProviderOptions Options, IReadOnlyList<string> Destinations, IReadOnlyList<ProviderKey> Keys, KeySelector? KeySelector, bool Simulated = false)
{
    public ProviderType Type => Options.Type;

    /// <summary>The Entra ID token of an <c>Auth: EntraId</c> provider (null for key-based providers and in simulator mode).</summary>
    public EntraIdTokenSource? EntraId { get; init; }

    /// <summary>True when the gateway can authenticate to the provider: a key, or an Entra ID credential.</summary>
    public bool HasCredential => Keys.Count > 0 || EntraId is not null;

    /// <summary>The provider's header allowlists and credential style, built once.</summary>
    public Proxy.Upstream.UpstreamHeaders Headers { get; } = Proxy.Upstream.UpstreamHeaders.For(Options, Simulated);

    /// <summary>The default (first) key, or null when the provider has none.</summary>
    public string? ApiKey => Keys.Count == 0 ? null : Keys[0].Secret;

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Id = ").Append(Id)
            .Append(", Type = ").Append(Type)
            .Append(", Destinations = [").AppendJoin(", ", Destinations)
            .Append("], Keys = [").AppendJoin(", ", Keys.Select(k => k.Label)).Append(']');
        return true;
    }
}

/// <summary>Resolves providers once: reads keys from the environment and decides whether the simulator serves.</summary>
internal sealed partial class ProviderRegistry : IAsyncDisposable
{
    private readonly FrozenDictionary<string, ResolvedProvider> _providers;
    private readonly EmbeddedSimulator? _simulator;

    /// <param name="entraIdCredential">
    /// A credential registered in DI replaces the one <c>EntraIdCredential</c> names for every <c>Auth: EntraId</c>
    /// provider (tests inject a fake; hosts may register their own chain).
    /// </param>
    public ProviderRegistry(IOptions<ProvidersOptions> options, IOptions<GatewayOptions> gateway, ILogger<ProviderRegistry> logger, TimeProvider time,
        Azure.Core.TokenCredential? entraIdCredential = null)
    {
        var configured = options.Value.Providers;
        var anyKey = configured.Values.Any(p => p.Auth == ProviderAuth.EntraId
            || p.ApiKeyEnvNames.Any(n => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(n))));
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
            var names = p.ApiKeyEnvNames;
            List<ProviderKey> keys = [];
            if (UsesSimulator)
            {
                // Every model routes to the built-in simulator; provider types keep their wire format (the
                // simulator speaks all of them) so the first run exercises the same code paths as production.
                // One simulator key per configured variable, so per-key rate-limit headers differ as they would.
                for (var i = 0; i < Math.Max(1, names.Count); i++)
                {
                    keys.Add(new ProviderKey($"{id}#{i}", i < names.Count ? names[i] : "(simulator)", i == 0 ? "simulator-key" : $"simulator-key-{i + 1}"));
                }

                map[id] = new ResolvedProvider(id, p, [_simulator!.Address], keys, new KeySelector(id, keys.Count, time), Simulated: true);
                continue;
            }

            if (p.Destinations.Count == 0)
            {
                throw new InvalidOperationException($"Provider '{id}' has no destinations (Providers:{id}:Destinations).");
            }

            foreach (var name in names)
            {
                var secret = Environment.GetEnvironmentVariable(name);
                if (string.IsNullOrEmpty(secret))
                {
                    LogKeyVariableEmpty(logger, id, name);
                    continue;
                }

                keys.Add(new ProviderKey($"{id}#{keys.Count}", name, secret));
            }

            var entraId = p.Auth == ProviderAuth.EntraId
                ? new EntraIdTokenSource(id, entraIdCredential ?? EntraIdTokenSource.CreateCredential(p), p.EntraIdScope, time, logger)
                : null;
            map[id] = new ResolvedProvider(id, p, p.Destinations, keys, keys.Count == 0 ? null : new KeySelector(id, keys.Count, time)) { EntraId = entraId };
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

    [LoggerMessage(2101, LogLevel.Warning, "Provider {ProviderId}: environment variable {Variable} is empty or unset; that key is skipped")]
    private static partial void LogKeyVariableEmpty(ILogger logger, string providerId, string variable);
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Resilience;
using TokenGateway.Hosting;
using TokenGateway.Providers;

namespace TokenGateway.IntegrationTests.Resilience;

public sealed class ProviderKeysTests
{
    private const string SecretA = "sk-test-key-a-7d1e0c9b3f";
    private const string SecretB = "sk-test-key-b-2a8f4e6d0c";
    private static readonly string EnvA = "TG_IT_KEYS_A_" + Guid.NewGuid().ToString("N")[..8];
    private static readonly string EnvB = "TG_IT_KEYS_B_" + Guid.NewGuid().ToString("N")[..8];
    private static readonly string EnvEmpty = "TG_IT_KEYS_EMPTY_" + Guid.NewGuid().ToString("N")[..8];

    static ProviderKeysTests()
    {
        Environment.SetEnvironmentVariable(EnvA, SecretA);
        Environment.SetEnvironmentVariable(EnvB, SecretB);
    }

    [Fact]
    public void Bind_CommaSeparatedList_YieldsEveryKeyInOrderWithTheFirstAsDefault()
    {
        var (registry, _) = Create(new() { ["Providers:openai:ApiKeyEnv"] = $" {EnvA} , {EnvB} " });

        Assert.True(registry.TryGet("openai", out var provider));
        Assert.Equal([SecretA, SecretB], provider.Keys.Select(k => k.Secret));
        Assert.Equal(["openai#0", "openai#1"], provider.Keys.Select(k => k.Label));
        Assert.Equal(SecretA, provider.ApiKey);
        Assert.Equal(2, provider.KeySelector!.Count);
    }

    [Fact]
    public void Bind_ArrayOfVariables_IsTheSameAsTheList()
    {
        var (registry, _) = Create(new()
        {
            ["Providers:openai:ApiKeyEnv:0"] = EnvB,
            ["Providers:openai:ApiKeyEnv:1"] = EnvA,
        });

        Assert.True(registry.TryGet("openai", out var provider));
        Assert.Equal([SecretB, SecretA], provider.Keys.Select(k => k.Secret));
        Assert.Equal($"{EnvB},{EnvA}", provider.Options.ApiKeyEnv);
    }

    [Fact]
    public void Bind_SingleVariable_StaysCompatible()
    {
        var (registry, _) = Create(new() { ["Providers:openai:ApiKeyEnv"] = EnvA });

        Assert.True(registry.TryGet("openai", out var provider));
        Assert.Equal(SecretA, provider.ApiKey);
        Assert.Single(provider.Keys);
    }

    [Fact]
    public void Resolve_EmptyVariable_IsSkippedWithAWarningThatNamesOnlyTheVariable()
    {
        var (registry, logs) = Create(new() { ["Providers:openai:ApiKeyEnv"] = $"{EnvEmpty},{EnvB}" });

        Assert.True(registry.TryGet("openai", out var provider));
        Assert.Equal([SecretB], provider.Keys.Select(k => k.Secret));
        Assert.Equal("openai#0", provider.Keys[0].Label);
        var warning = Assert.Single(logs.Messages);
        Assert.Contains(EnvEmpty, warning, StringComparison.Ordinal);
    }

    [Fact]
    public void PrintedForms_OfProviderKeysAndSelectorState_HoldNoKey()
    {
        var (registry, logs) = Create(new() { ["Providers:openai:ApiKeyEnv"] = $"{EnvA},{EnvB},{EnvEmpty}" });
        Assert.True(registry.TryGet("openai", out var provider));
        var selector = provider.KeySelector!;
        var key = selector.TryAcquire();
        selector.Release(key, new RateLimitSnapshot(3, 100), rateLimited: true, retryAfter: TimeSpan.FromSeconds(2));
        selector.TryAcquire();

        var printed = string.Join("\n", provider.ToString(), string.Join(",", provider.Keys), selector.ToString(), string.Join("\n", logs.Messages));

        Assert.Contains("openai#1", printed, StringComparison.Ordinal);
        Assert.DoesNotContain(SecretA, printed, StringComparison.Ordinal);
        Assert.DoesNotContain(SecretB, printed, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-test", printed, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SimulatorMode_GivesOneDistinctSimulatorKeyPerVariable()
    {
        var (registry, _) = Create(new()
        {
            ["Gateway:Simulator"] = "Always",
            ["Providers:openai:ApiKeyEnv"] = $"{EnvA},{EnvB}",
        });
        await using var _ = registry;

        Assert.True(registry.TryGet("openai", out var provider));
        Assert.Equal(["simulator-key", "simulator-key-2"], provider.Keys.Select(k => k.Secret));
        Assert.Equal("simulator-key", provider.ApiKey);
    }

    private static (ProviderRegistry Registry, ListLogger Logs) Create(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Providers:openai:Destinations:0", "http://127.0.0.1:9/");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var providers = new ProvidersOptions();
        providers.Bind(configuration);
        var gateway = new GatewayOptions { Simulator = Enum.Parse<SimulatorMode>(configuration["Gateway:Simulator"] ?? "Never") };
        var logs = new ListLogger();
        return (new ProviderRegistry(Options.Create(providers), Options.Create(gateway), logs, TimeProvider.System), logs);
    }

    private sealed class ListLogger : ILogger<ProviderRegistry>
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}

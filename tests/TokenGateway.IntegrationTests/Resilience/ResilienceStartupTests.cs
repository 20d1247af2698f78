using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;
using TokenGateway.Hosting;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Resilience;

public sealed class ResilienceStartupTests
{
    [Fact]
    public async Task Start_ConfiguredResilience_BindsDefaultsModelOverridesAndFallbacks()
    {
        await using var server = await GatewayServer.StartAsync(new Dictionary<string, string?>
        {
            ["Gateway:UpstreamTimeout"] = "00:00:42",
            ["Resilience:Retry:MaxAttempts"] = "4",
            ["Resilience:CircuitBreaker:BreakDuration"] = "00:00:20",
            ["Models:gpt-4o:Resilience:Retry:MaxAttempts"] = "2",
            ["Models:gpt-4o:Resilience:Timeouts:Total"] = "00:03:00",
            ["Models:gpt-4o:Resilience:ContinueStreams"] = "true",
            ["Models:gpt-4o:Fallbacks:0"] = "gpt-4.1",
            ["Models:gpt-4o:Fallbacks:1"] = "gpt-4o-mini",
        });

        var options = server.Services.GetRequiredService<IOptions<ResilienceOptions>>().Value;
        var catalog = server.Services.GetRequiredService<ModelCatalog>();
        Assert.True(catalog.TryResolve("gpt-4o", out var card));
        var settings = ResilienceSettingsResolver.Resolve(options.ToSettings(), card.Resilience, null);

        Assert.Equal(TimeSpan.FromSeconds(42), options.Timeouts.ResponseHeaders); // from Gateway:UpstreamTimeout
        Assert.Equal(TimeSpan.FromSeconds(20), options.CircuitBreaker.BreakDuration);
        Assert.Equal(2, settings.MaxAttempts);
        Assert.Equal(TimeSpan.FromMinutes(3), settings.TotalTimeout);
        Assert.True(settings.ContinueStreams);
        Assert.Equal(["gpt-4.1", "gpt-4o-mini"], card.Fallbacks);
    }

    [Theory]
    [InlineData("Resilience:Retry:MaxAttempts", "0", "Resilience:Retry:MaxAttempts")]
    [InlineData("Resilience:CircuitBreaker:FailureRatio", "1.5", "Resilience:CircuitBreaker:FailureRatio")]
    [InlineData("Resilience:Timeouts:Connect", "00:00:00", "Resilience:Timeouts:Connect")]
    [InlineData("Models:gpt-4o:Resilience:Retry:Jitter", "3", "Models:gpt-4o:Resilience:Retry:Jitter")]
    [InlineData("Models:gpt-4o:Fallbacks:0", "no-such-model", "not in the catalogue")]
    [InlineData("Models:gpt-4o:Fallbacks:0", "gpt-4o", "itself")]
    public async Task Start_InvalidResilienceConfiguration_FailsWithTheField(string key, string value, string expected)
    {
        var data = Path.Combine(Path.GetTempPath(), "tg-it-res-" + Guid.NewGuid().ToString("N"));
        var builder = GatewayApplication.CreateBuilder(["--urls", "http://127.0.0.1:0"]);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:Simulator"] = "Always",
            ["Storage:DataDirectory"] = data,
            ["Serilog:MinimumLevel:Default"] = "Fatal",
            [key] = value,
        });
        try
        {
            // Validation fails while the app is built (the catalogue is resolved when the proxy is mapped) or
            // started (ValidateOnStart): either way before anything is served.
            var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
            {
                await using var app = GatewayApplication.Build(builder);
                await app.StartAsync();
            });
            Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
                // best effort (also: nothing was created)
            }
        }
    }
}

using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using TokenGateway.Hosting;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>Bad configuration stops the start with the offending key (issue #11), instead of a silent fallback.</summary>
[Collection(nameof(SerialCollection))]
public sealed class StartupValidationTests
{
    private static async Task<string> StartFailureAsync(Dictionary<string, string?> settings)
    {
        var data = Path.Combine(Path.GetTempPath(), "tg-it-start-" + Guid.NewGuid().ToString("N"));
        var builder = GatewayApplication.CreateBuilder(["--urls", "http://127.0.0.1:0"]);
        var config = new Dictionary<string, string?>
        {
            ["TOKENGATEWAY_ADMIN_KEY"] = GatewayServer.AdminKey,
            ["Gateway:Simulator"] = "Never",
            ["Storage:DataDirectory"] = data,
            ["Serilog:MinimumLevel:Default"] = "Fatal",
        };
        foreach (var (key, value) in settings)
        {
            config[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(config);
        WebApplication? app = null;
        try
        {
            // Depending on the option, building the pipeline (YARP resolves its clusters) or starting the host
            // (ValidateOnStart) is the first to need it; either way the gateway never serves a request.
            var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
            {
                app = GatewayApplication.Build(builder);
                await app.StartAsync();
            });
            return string.Join("; ", error.Failures);
        }
        finally
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    [Fact]
    public async Task Start_UnknownTokenizer_FailsNamingTheCard()
    {
        var failure = await StartFailureAsync(new() { ["Models:gpt-4o:Tokenizer"] = "p50k_base" });

        Assert.Contains("Models:gpt-4o:Tokenizer 'p50k_base' is not a known tokenizer", failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_UnpricedCardWhileRefused_FailsNamingTheCard()
    {
        var failure = await StartFailureAsync(new() { ["Models:local-llm:Provider"] = "openai" });

        Assert.Contains("Models:local-llm has no InputPrice while Pricing:UnpricedModelPolicy is Refuse", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Providers:openai:Destinations:0", "api.openai.com", "Providers:openai:Destinations entry 'api.openai.com' is not an absolute http or https URL")]
    [InlineData("Alerts:WebhookUrl", "/relative/hook", "Alerts:WebhookUrl must be an absolute http or https URL")]
    [InlineData("Alerts:MaxAttempts", "0", "MaxAttempts")]
    [InlineData("Pricing:CeilingInputPerMillion", "-1", "CeilingInputPerMillion")]
    [InlineData("Budgets:MinimumOutputFraction", "2", "Budgets:MinimumOutputFraction must be between 0 and 1")]
    public async Task Start_InvalidOption_FailsNamingTheKey(string key, string value, string expected)
    {
        var failure = await StartFailureAsync(new() { [key] = value });

        Assert.Contains(expected, failure, StringComparison.Ordinal);
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests;

public sealed class CoreServiceCollectionExtensionsTests
{
    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        services.AddTokenGatewayCore();
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    private static Dictionary<string, string?> Card(string name, string tokenizer = "o200k_base", string? input = "1", string? output = "2") => new()
    {
        [$"Models:{name}:Provider"] = "openai",
        [$"Models:{name}:Tokenizer"] = tokenizer,
        [$"Models:{name}:InputPrice"] = input,
        [$"Models:{name}:OutputPrice"] = output,
    };

    private static string StartupFailure(ServiceProvider provider) =>
        string.Join("; ", Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ModelCatalog>()).Failures);

    [Fact]
    public void AddTokenGatewayCore_ValidCatalogue_ResolvesEveryService()
    {
        using var provider = Build(Card("gpt-4o"));

        Assert.True(provider.GetRequiredService<ModelCatalog>().TryResolve("gpt-4o", out _));
        Assert.Same(TiktokenTokenizerRegistry.Shared, provider.GetRequiredService<ITokenizerRegistry>());
        Assert.NotNull(provider.GetRequiredService<IRequestTokenCounter>());
        Assert.NotNull(provider.GetRequiredService<CostCalculator>());
        Assert.NotNull(provider.GetRequiredService<Core.Optimization.OptimizationPipeline>());
    }

    [Fact]
    public void AddTokenGatewayModels_UnknownTokenizer_FailsWithTheCardsKey()
    {
        // Before issue #11 an unknown name silently counted with o200k_base.
        using var provider = Build(Card("my-model", tokenizer: "p50k_base"));

        var failure = StartupFailure(provider);

        Assert.Contains("Models:my-model:Tokenizer 'p50k_base' is not a known tokenizer", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void AddTokenGatewayModels_UnpricedCardWhileRefused_FailsStartup()
    {
        using var provider = Build(Card("local-llm", input: null));

        var failure = StartupFailure(provider);

        Assert.Contains("Models:local-llm has no InputPrice while Pricing:UnpricedModelPolicy is Refuse", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void AddTokenGatewayModels_UnpricedCardUnderCeiling_Starts()
    {
        var settings = Card("local-llm", input: null, output: null);
        settings["Pricing:UnpricedModelPolicy"] = "Ceiling";
        using var provider = Build(settings);

        Assert.True(provider.GetRequiredService<ModelCatalog>().TryResolve("local-llm", out var card));
        Assert.False(card.Prices.IsPriced);
    }

    [Fact]
    public void AddTokenGatewayPricing_DeprecatedBudgetsKeys_AliasTheCeilingUnlessPricingSetsIt()
    {
        using var aliased = Build(new() { ["Budgets:UnpricedInputPricePerMillion"] = "7", ["Budgets:UnpricedOutputPricePerMillion"] = "21" });
        using var both = Build(new() { ["Budgets:UnpricedInputPricePerMillion"] = "7", ["Pricing:CeilingInputPerMillion"] = "9" });

        var alias = aliased.GetRequiredService<IOptions<PricingOptions>>().Value;
        var pricing = both.GetRequiredService<IOptions<PricingOptions>>().Value;

        Assert.Equal((7m, 21m), (alias.CeilingInputPerMillion, alias.CeilingOutputPerMillion));
        Assert.Equal((9m, 75m), (pricing.CeilingInputPerMillion, pricing.CeilingOutputPerMillion));
    }

    [Fact]
    public void AddTokenGatewayPricing_NonPositiveCeiling_FailsValidation()
    {
        using var provider = Build(new() { ["Pricing:CeilingOutputPerMillion"] = "0" });

        var failure = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<PricingOptions>>().Value);

        Assert.Contains("CeilingOutputPerMillion", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TiktokenTokenizerRegistry_UnknownEncoding_Throws()
    {
        var error = Assert.Throws<ArgumentException>(() => TiktokenTokenizerRegistry.Shared.Count("p50k_base", "hello"));

        Assert.Contains("Unknown tokenizer 'p50k_base'", error.Message, StringComparison.Ordinal);
    }
}

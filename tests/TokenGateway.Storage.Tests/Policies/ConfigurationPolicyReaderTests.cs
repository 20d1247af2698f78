using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using TokenGateway.Core.Budgets;
using TokenGateway.Storage.Policies;

namespace TokenGateway.Storage.Tests.Policies;

public sealed class ConfigurationPolicyReaderTests
{
    private static IConfiguration Config(Dictionary<string, string?> values) => new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    [Fact]
    public void Read_DefaultTeamsAndKeys_ConvertsTypes()
    {
        var configuration = Config(new()
        {
            ["Policies:Default:Budget:Usd"] = "50",
            ["Policies:Default:Budget:Period"] = "day",
            ["Policies:Default:Budget:SoftAlertPercent"] = "80",
            ["Policies:Default:Budget:Hard"] = "true",
            ["Policies:Default:RateLimits:RequestsPerMinute"] = "600",
            ["Policies:Default:Models:Allow:0"] = "*",
            ["Policies:Default:MaxTokens:Default"] = "1024",
            ["Policies:Default:Optimization:Compact:Toon"] = "true",
            ["Policies:Teams:team-a:Budget:Usd"] = "12.5",
            ["Policies:Teams:team-a:Models:Allow:0"] = "gpt-4o*",
            ["Policies:Teams:team-a:Models:Allow:1"] = "1",
            ["Policies:Keys:key-1:RateLimits:TokensPerMinute"] = "5000",
        });

        var policies = ConfigurationPolicyReader.Read(configuration, out var errors);

        Assert.Empty(errors);
        Assert.Equal(50m, policies.Default!.Budget!.Usd);
        Assert.Equal(BudgetPeriod.Day, policies.Default.Budget.Period);
        Assert.Equal(80, policies.Default.Budget.SoftAlertPercent);
        Assert.True(policies.Default.Budget.Hard);
        Assert.Equal(600, policies.Default.RateLimits!.RequestsPerMinute);
        Assert.Equal(["*"], policies.Default.Models!.Allow);
        Assert.Equal(1024, policies.Default.MaxTokens!.Default);
        Assert.True(policies.Default.Optimization!["compact"]!["toon"]!.GetValue<bool>());
        Assert.Equal(12.5m, policies.Teams["team-a"].Budget!.Usd);
        Assert.Equal(["gpt-4o*", "1"], policies.Teams["team-a"].Models!.Allow); // model names stay strings
        Assert.Equal(5000, policies.Keys["key-1"].RateLimits!.TokensPerMinute);
    }

    [Fact]
    public void Read_InvalidValues_ReportsPathAndField()
    {
        var configuration = Config(new()
        {
            ["Policies:Teams:team-a:Budget:Usd"] = "-1",
            ["Policies:Teams:team-b:Budget:Period"] = "fortnight",
            ["Policies:Teams:team-c:Budgett:Usd"] = "5",
        });

        var policies = ConfigurationPolicyReader.Read(configuration, out var errors);

        Assert.Equal(3, errors.Count);
        Assert.Contains(errors, e => e.Field == "Policies:Teams:team-a budget.usd");
        Assert.Contains(errors, e => e.Field == "Policies:Teams:team-b budget.period");
        Assert.Contains(errors, e => e.Field.StartsWith("Policies:Teams:team-c", StringComparison.Ordinal) && e.Message.Contains("Unknown field", StringComparison.Ordinal));
        Assert.Empty(policies.Teams);
        Assert.Throws<InvalidOperationException>(() => ConfigurationPolicyReader.ReadOrThrow(configuration));
    }

    [Fact]
    public void Read_NoSection_IsEmpty()
    {
        var policies = ConfigurationPolicyReader.Read(Config([]), out var errors);

        Assert.Empty(errors);
        Assert.Null(policies.Default);
        Assert.Empty(policies.Teams);
    }

    [Fact]
    public void Read_ConfiguredSections_ResolveTypedAndBadFieldsAreErrors()
    {
        var good = ConfigurationPolicyReader.Read(Config(new()
        {
            ["Policies:Default:Optimization:Trim:MarginTokens"] = "300",
            ["Policies:Default:StructuredOutput:MaxRepairs"] = "2",
            ["Policies:Default:StructuredOutput:OnFailure"] = "passthrough",
        }), out var noErrors);
        ConfigurationPolicyReader.Read(Config(new() { ["Policies:Teams:t1:Optimization:Trim:Margin"] = "300" }), out var errors);

        var effective = EffectivePolicy.Resolve("t1", null, good.Default, null, null);
        Assert.Empty(noErrors);
        Assert.Equal(300, effective.Optimization.Resolve("gpt-4o", "/v1/chat/completions").Trim.MarginTokens);
        Assert.Equal(2, effective.StructuredOutput.MaxRepairs);
        var error = Assert.Single(errors);
        Assert.Equal("Policies:Teams:t1 optimization", error.Field);
        Assert.Contains("trim.margin: unknown field", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddTokenGatewayBudgets_ResolvesAdmissionWithConfiguredPolicies()
    {
        var directory = Path.Combine(Path.GetTempPath(), "tg-budgets-" + Guid.NewGuid().ToString("N"));
        try
        {
            var configuration = Config(new()
            {
                ["Storage:DataDirectory"] = directory,
                ["Policies:Teams:t1:Budget:Usd"] = "2",
                ["Budgets:MinimumOutputTokens"] = "128",
            });
            var services = new ServiceCollection().AddLogging().AddSingleton(configuration);
            services.AddTokenGatewayBudgets(configuration);
            await using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

            var policies = provider.GetRequiredService<IPolicyProvider>();
            var admission = provider.GetRequiredService<AdmissionController>();
            var policy = await policies.GetAsync("t1", null, CancellationToken.None);
            await policies.SetAsync(PolicyScope.Team, "t2", new TeamPolicy { Budget = new BudgetPolicy { Usd = 3 } }, CancellationToken.None);
            var snapshot = await admission.GetBudgetAsync(policy, CancellationToken.None);

            Assert.Equal(2_000_000, policy.TeamBudget.UsdMicros);
            Assert.Equal(2m, snapshot.RemainingUsd);
            Assert.Equal(3_000_000, (await policies.GetAsync("t2", null, CancellationToken.None)).TeamBudget.UsdMicros);
            Assert.NotNull(await provider.GetRequiredService<IPolicyStore>().GetAsync(PolicyScope.Team, "t2", CancellationToken.None));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }
}

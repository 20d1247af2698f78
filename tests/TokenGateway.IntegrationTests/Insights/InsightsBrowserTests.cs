using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests.Insights;

/// <summary>
/// The insights page in a real browser (Debian's headless chromium via Playwright, as <see cref="DashboardBrowserTests"/>):
/// after real SDK traffic from the simulator, the page lists the team's recommendations in the API's order with the
/// API's dollar figures and policy fragments, and loads nothing from outside the gateway.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class InsightsBrowserTests
{
    private const string ChromiumPath = "/usr/bin/chromium";

    [Fact]
    public async Task InsightsPage_AfterTraffic_ShowsTheApiRecommendations()
    {
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: install it with 'apt-get install -y chromium' (.ci/run does).");
        await using var server = await GatewayServer.StartAsync(InsightsTests.Settings);
        var (teamId, key) = await server.CreateTeamWithKeyAsync("insights-ui");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{teamId}/policy",
            new { optimization = new { compact = false, dedupe = false, cacheHints = false } })).EnsureSuccessStatusCode();
        await InsightsTests.SendTrafficAsync(server, key);
        var api = await InsightsTests.WaitForSamplesAsync(server, teamId, 36);
        var expected = api["recommendations"]!.AsArray().Select(r => r!.AsObject()).ToList();
        Assert.True(expected.Count >= 5, "the traffic yields a recommendation of every kind");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1500, Height = 1800 } });
        var page = await context.NewPageAsync();
        var external = new List<string>();
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith(server.Address, StringComparison.Ordinal))
            {
                external.Add(request.Url);
            }
        };

        // Without a session the page sends the browser to the login form; after it, to the dashboard.
        await page.GotoAsync(server.Address + "dashboard/insights?team=" + teamId);
        Assert.EndsWith("/dashboard/login", page.Url, StringComparison.Ordinal);
        await page.FillAsync("#key", GatewayServer.AdminKey);
        await page.ClickAsync("#sign-in");
        await page.WaitForSelectorAsync("body[data-ready='true']", new PageWaitForSelectorOptions { Timeout = 30_000 });
        Assert.NotNull(await page.QuerySelectorAsync("#insights-link"));

        await page.GotoAsync(server.Address + "dashboard/insights?team=" + teamId);
        await page.WaitForSelectorAsync("body[data-ready='true']", new PageWaitForSelectorOptions { Timeout = 30_000 });
        Assert.Equal(teamId, await page.EvalOnSelectorAsync<string>("#team", "s => s.value"));

        var rows = page.Locator("#recommendations tbody tr");
        Assert.Equal(expected.Count, await rows.CountAsync());
        for (var i = 0; i < expected.Count; i++)
        {
            var row = rows.Nth(i);
            var item = expected[i];
            Assert.Equal(item["id"]!.GetValue<string>(), await row.GetAttributeAsync("data-id"));
            Assert.Contains(item["title"]!.GetValue<string>(), await row.TextContentAsync() ?? "", StringComparison.Ordinal);
            var shown = decimal.Parse((await row.Locator("td.usd").TextContentAsync())!.TrimStart('$').Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
            Assert.Equal(Math.Round(item["estimatedUsdPerMonth"]!.GetValue<decimal>(), 6), shown);
            var fragment = JsonNode.Parse((await row.Locator("pre.policy").TextContentAsync())!);
            Assert.True(JsonNode.DeepEquals(item["policy"], fragment), $"policy fragment of {item["id"]}");
        }

        Assert.Equal(expected.Max(r => r["estimatedUsdPerMonth"]!.GetValue<decimal>()), decimal.Parse((await page.GetAttributeAsync("#best-saving", "data-value"))!, NumberStyles.Float, CultureInfo.InvariantCulture));
        Assert.Equal("36", await page.GetAttributeAsync("#team-samples", "data-value"));
        Assert.True(long.Parse((await page.GetAttributeAsync("#shadow-cpu", "data-value"))!, CultureInfo.InvariantCulture) > 0);
        Assert.Equal(api["volume"]!["usdPerMonth"]!.GetValue<decimal>(),
            decimal.Parse((await page.GetAttributeAsync("#monthly-spend", "data-value"))!, NumberStyles.Float, CultureInfo.InvariantCulture));
        Assert.Empty(external);

        var artifacts = Path.Combine(RepoPaths.Root(), "TestResults");
        Directory.CreateDirectory(artifacts);
        var screenshot = Path.Combine(artifacts, "insights.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        Assert.True(new FileInfo(screenshot).Length > 10_000);
    }
}

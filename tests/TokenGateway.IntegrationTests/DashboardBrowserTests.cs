using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// The dashboard in a real browser (Debian's headless chromium driven by Playwright; never a downloaded browser):
/// after real traffic, log in and check that the totals shown equal <c>/admin/usage</c>.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class DashboardBrowserTests
{
    private const string ChromiumPath = "/usr/bin/chromium";

    [Fact]
    public async Task Dashboard_AfterTraffic_LoginShowsTotalsEqualToUsageApi()
    {
        // Deliberately a failure, not a skip: CI installs chromium in .ci/run and this test must run there.
        Assert.True(File.Exists(ChromiumPath), $"{ChromiumPath} is missing: install it with 'apt-get install -y chromium' (.ci/run does).");
        await using var server = await GatewayServer.StartAsync();
        var (otherTeam, otherKey) = await server.CreateTeamWithKeyAsync("second-team");
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{otherTeam}/policy", new { budget = new { usd = 1, period = "month", hard = true } })).EnsureSuccessStatusCode();
        await TrafficGenerator.SendMixAsync(server, server.VirtualKey);
        await TrafficGenerator.SendMixAsync(server, otherKey);
        await SendCachedPairAsync(server); // issue #15: one miss and two hits for the cache panel

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 2200 } });
        var page = await context.NewPageAsync();
        var external = new List<string>();
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith(server.Address, StringComparison.Ordinal))
            {
                external.Add(request.Url);
            }
        };

        await page.GotoAsync(server.Address + "dashboard");
        Assert.EndsWith("/dashboard/login", page.Url, StringComparison.Ordinal);
        await page.FillAsync("#key", "tga-wrong-key-000000000000");
        await page.ClickAsync("#sign-in");
        Assert.Contains("not valid", await page.TextContentAsync("#login-error") ?? "", StringComparison.Ordinal);
        await page.FillAsync("#key", GatewayServer.AdminKey);
        await page.ClickAsync("#sign-in");
        await page.WaitForSelectorAsync("body[data-ready='true']", new PageWaitForSelectorOptions { Timeout = 30_000 });

        var cookie = Assert.Single(await context.CookiesAsync());
        Assert.True(cookie.HttpOnly);
        Assert.True(cookie.Secure);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);
        Assert.DoesNotContain(GatewayServer.AdminKey, cookie.Value, StringComparison.Ordinal);

        var query = await page.GetAttributeAsync("#totals", "data-query") ?? "";
        var api = (await server.Admin.GetFromJsonAsync<JsonElement>("/admin/usage?" + query)).GetProperty("totals");
        Assert.True(api.GetProperty("requests").GetInt64() >= 16);
        await AssertShownAsync(page, "total-requests", api.GetProperty("requests").GetInt64());
        await AssertShownAsync(page, "total-input-received", api.GetProperty("inputTokensReceived").GetInt64());
        await AssertShownAsync(page, "total-input-sent", api.GetProperty("inputTokensSent").GetInt64());
        await AssertShownAsync(page, "total-input", api.GetProperty("inputTokens").GetInt64());
        await AssertShownAsync(page, "total-output", api.GetProperty("outputTokens").GetInt64());
        await AssertShownAsync(page, "total-saved", api.GetProperty("tokensSaved").GetInt64());
        var shownCost = decimal.Parse((await page.TextContentAsync("#total-cost"))!.TrimStart('$').Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
        Assert.Equal(Math.Round(api.GetProperty("costUsd").GetDecimal(), 6), shownCost);
        Assert.True(shownCost > 0);

        var cache = await server.Admin.GetFromJsonAsync<JsonElement>("/admin/usage/cache?" + query);
        Assert.Equal(2, cache.GetProperty("hits").GetInt64());
        await AssertShownAsync(page, "cache-hits", 2);
        await AssertShownAsync(page, "cache-tokens", cache.GetProperty("tokensSaved").GetInt64());
        Assert.Equal(cache.GetProperty("hitShare").GetDouble().ToString("P1", CultureInfo.InvariantCulture).Replace(" ", "", StringComparison.Ordinal),
            await page.TextContentAsync("#cache-hit-share"));
        var shownSaved = decimal.Parse((await page.TextContentAsync("#cache-saved"))!.TrimStart('$').Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
        Assert.Equal(Math.Round(cache.GetProperty("savedUsd").GetDecimal(), 6), shownSaved);
        Assert.True(shownSaved > 0);

        var recentRows = await page.Locator("#recent tbody tr").CountAsync();
        var teamRows = await page.Locator("#budgets tbody tr").CountAsync();
        Assert.Equal((int)api.GetProperty("requests").GetInt64(), recentRows); // fewer than the 50-row page
        Assert.True(teamRows >= 2);
        Assert.Contains("$1.00", await page.TextContentAsync("#budgets tbody") ?? "", StringComparison.Ordinal);
        Assert.Equal(2, await page.Locator("#chart-cost-team svg polyline").CountAsync()); // one line per team
        Assert.Empty(external);

        var artifacts = Path.Combine(RepoPaths.Root(), "TestResults");
        Directory.CreateDirectory(artifacts);
        var screenshot = Path.Combine(artifacts, "dashboard.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        Assert.True(new FileInfo(screenshot).Length > 10_000);
    }

    private static async Task SendCachedPairAsync(GatewayServer server)
    {
        // The first team turns its cache on after its traffic mix (a third team would add a line to the per-team charts).
        (await server.Admin.PutAsJsonAsync($"/admin/teams/{server.TeamId}/policy", new { cache = new { enabled = true } })).EnsureSuccessStatusCode();
        using var http = server.CreateClient();
        foreach (var expected in new[] { "miss", "hit", "hit" })
        {
            using var response = await http.PostAsJsonAsync("/v1/chat/completions",
                new { model = "gpt-4o-mini", messages = new[] { new { role = "user", content = "What does the cache panel show?" } } });
            response.EnsureSuccessStatusCode();
            Assert.Equal(expected, response.Headers.GetValues("x-tokengateway-cache").Single());
            await server.WaitForEventAsync(response.Headers.GetValues("x-tokengateway-request-id").Single());
        }
    }

    private static async Task AssertShownAsync(IPage page, string id, long expected)
    {
        var text = await page.TextContentAsync("#" + id);
        Assert.Equal(expected, long.Parse(text!.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture));
        Assert.Equal(expected.ToString(CultureInfo.InvariantCulture), await page.GetAttributeAsync("#" + id, "data-value"));
    }
}

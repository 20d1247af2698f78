using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>Reads usage events back through the admin API (the same numbers ops see).</summary>
public static class LedgerProbe
{
    public static async Task<JsonElement> WaitForEventAsync(this GatewayServer server, string requestId, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            using var response = await server.Admin.GetAsync($"/admin/usage/{requestId}");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return await response.Content.ReadFromJsonAsync<JsonElement>();
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"No usage event for {requestId} (last status {(int)response.StatusCode}).");
            }

            await Task.Delay(50);
        }
    }

    public static async Task<JsonElement> UsageAsync(this GatewayServer server, string query)
    {
        return await server.Admin.GetFromJsonAsync<JsonElement>("/admin/usage?" + query);
    }
}

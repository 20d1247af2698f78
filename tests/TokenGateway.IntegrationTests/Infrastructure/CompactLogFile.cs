using System.Text.Json;

namespace TokenGateway.IntegrationTests.Infrastructure;

/// <summary>Reads the compact-JSON events a gateway's Serilog file sink has written so far.</summary>
internal static class CompactLogFile
{
    /// <summary>A fresh log file path under the temp directory (the caller deletes it).</summary>
    public static string NewPath(string prefix) => Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N") + ".json");

    /// <summary>Gateway settings that log at Information, as compact JSON, to <paramref name="logFile"/> (flushed every 100 ms).</summary>
    public static Dictionary<string, string?> GatewaySettings(string logFile) => new()
    {
        ["Serilog:MinimumLevel:Default"] = "Information",
        ["Serilog:WriteTo:0:Name"] = "File",
        ["Serilog:WriteTo:0:Args:path"] = logFile,
        ["Serilog:WriteTo:0:Args:formatter"] = "Serilog.Formatting.Compact.CompactJsonFormatter, Serilog.Formatting.Compact",
        ["Serilog:WriteTo:0:Args:flushToDiskInterval"] = "00:00:00.100",
    };

    /// <summary>
    /// Polls <paramref name="logFile"/> every 100 ms (up to 15 s, since Serilog writes a request's completion event after
    /// the response has gone out) until <paramref name="done"/> holds for the events read, and returns the last read.
    /// </summary>
    public static async Task<List<JsonElement>> WaitForEventsAsync(string logFile, Func<List<JsonElement>, bool> done)
    {
        var events = new List<JsonElement>();
        for (var attempt = 0; attempt < 150 && !done(events); attempt++)
        {
            await Task.Delay(100);
            using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var lines = (await reader.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            events = lines.Where(line => line.EndsWith('}')).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        }

        return events;
    }
}

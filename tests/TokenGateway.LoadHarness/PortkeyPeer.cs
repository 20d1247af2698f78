using System.Diagnostics;
using System.Text.Json.Nodes;

namespace TokenGateway.LoadHarness;

/// <summary>
/// Installs the peer gateway (npm <c>@portkey-ai/gateway</c>, pinned) into a cache folder outside the repository and
/// finds its server script. Any failure (no npm, no registry, timeout) is returned as a reason to skip the peer.
/// </summary>
internal static class PortkeyPeer
{
    public const string Version = "1.15.2";

    public static string DefaultDirectory => Path.Combine(Path.GetTempPath(), "tokengateway-perf", $"portkey-{Version}");

    public static async Task<(string? Script, string? SkipReason)> EnsureInstalledAsync(string directory, TimeSpan timeout)
    {
        var script = Path.Combine(directory, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js");
        if (File.Exists(script) && InstalledVersion(directory) == Version)
        {
            return (script, null);
        }

        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(Path.Combine(directory, "package.json"), """{ "name": "tokengateway-perf-peer", "private": true }""");
        var (exitCode, output) = await RunAsync("npm",
            ["install", "--no-audit", "--no-fund", "--loglevel=error", $"@portkey-ai/gateway@{Version}"], directory, timeout);
        if (exitCode != 0 || !File.Exists(script))
        {
            return (null, exitCode is null ? $"npm install did not finish: {output}" : $"npm install failed ({exitCode}): {Last(output, 400)}");
        }

        return (script, null);
    }

    public static async Task<string?> NodeVersionAsync()
    {
        var (exitCode, output) = await RunAsync("node", ["--version"], Environment.CurrentDirectory, TimeSpan.FromSeconds(10));
        return exitCode == 0 ? output.Trim() : null;
    }

    private static string? InstalledVersion(string directory)
    {
        var manifest = Path.Combine(directory, "node_modules", "@portkey-ai", "gateway", "package.json");
        return File.Exists(manifest) ? JsonNode.Parse(File.ReadAllText(manifest))?["version"]?.GetValue<string>() : null;
    }

    /// <summary>Runs a command with a time limit; a null exit code means it could not start or was killed at the limit.</summary>
    private static async Task<(int? ExitCode, string Output)> RunAsync(string fileName, string[] arguments, string directory, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        Process? process;
        try
        {
            process = Process.Start(info);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (null, $"{fileName} is not available ({e.Message})");
        }

        if (process is null)
        {
            return (null, $"{fileName} did not start");
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                return (null, $"{fileName} timed out after {timeout.TotalSeconds:0} s");
            }

            return (process.ExitCode, await stdout + await stderr);
        }
    }

    private static string Last(string text, int length) => text.Length <= length ? text.Trim() : text[^length..].Trim();
}

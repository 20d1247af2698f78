using System.Diagnostics;
using TokenGateway.Core.Models;
using TokenGateway.Core.Resilience;
using Xunit.Abstractions;

namespace TokenGateway.Core.Tests.Resilience;

/// <summary>The happy path (one attempt, success) stays cheap: it runs on every proxied request once wired.</summary>
public sealed class AttemptPlannerCostTests(ITestOutputHelper output)
{
    [Fact]
    public void StartThenSuccess_AllocatesLittlePerRequest()
    {
        var time = TimeProvider.System;
        var keys = new KeySelector("openai", 2, time);
        PlannedModel[] chain = [new(new ModelCard { Name = "gpt-4o", Provider = "openai" }, ResilienceSettings.Default, ["openai-0", "openai-1"], keys)];
        var breakers = new NoBreakers();
        const int n = 20_000;
        Run(n); // warm up (tiered JIT, scope-id cache)
        Thread.Sleep(200); // let tier-1 code install

        var before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        Run(n);
        watch.Stop();
        var perRequest = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)n;

        output.WriteLine($"planner happy path: {perRequest:0} B and {watch.Elapsed.TotalNanoseconds / n:0} ns per request");
        Assert.InRange(perRequest, 0, 512);

        void Run(int count)
        {
            var ok = 0;
            for (var i = 0; i < count; i++)
            {
                var planner = new AttemptPlanner(chain, breakers, time, static () => 0.5);
                if (planner.Start().Step == PlanStep.Attempt && planner.Next(AttemptResult.Status(200)).Step == PlanStep.Succeeded)
                {
                    ok++;
                }
            }

            Assert.Equal(count, ok);
        }
    }

    private sealed class NoBreakers : ICircuitStates
    {
        public bool IsOpen(string scopeId, out TimeSpan retryAfter)
        {
            retryAfter = default;
            return false;
        }
    }
}

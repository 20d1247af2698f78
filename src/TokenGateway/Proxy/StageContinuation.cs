namespace TokenGateway.Proxy;

/// <summary>
/// Chains a proxy stage to the next one without an async state machine when the stage finished synchronously
/// (the common case: cached key, cached policy, in-memory counters, body already received). An <c>async</c>
/// middleware that awaits the rest of the pipeline allocates its state machine on every request, because the
/// upstream call never completes synchronously.
/// </summary>
internal static class StageContinuation
{
    /// <summary>Runs <paramref name="next"/> when <paramref name="stage"/> returns true (false: the stage answered the request itself).</summary>
    public static Task Then(this ValueTask<bool> stage, RequestDelegate next, HttpContext context) =>
        stage.IsCompletedSuccessfully
            ? stage.Result ? next(context) : Task.CompletedTask
            : AwaitThenAsync(stage, next, context);

    private static async Task AwaitThenAsync(ValueTask<bool> stage, RequestDelegate next, HttpContext context)
    {
        if (await stage)
        {
            await next(context);
        }
    }
}

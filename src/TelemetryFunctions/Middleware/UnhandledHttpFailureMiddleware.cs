using System;
using System.Threading.Tasks;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.Logging;
using TelemetryFunctions.Http;
using TelemetryFunctions.Ingestion;

namespace TelemetryFunctions.Functions.Middleware;

/// <summary>
/// Answers an unexpected failure of an HTTP function with a 500 and the library's JSON error body, logged once with the
/// exception (function name and invocation id only: no payload, no URL, whose query may hold a key). Timer and blob
/// invocations have no HTTP context, so their failures propagate and the host retries them (and poisons a blob).
/// </summary>
/// <remarks>
/// Registered after <c>ConfigureFunctionsWebApplication()</c>, so it runs inside the ASP.NET Core integration's
/// proxying middleware: that middleware has already put the <c>HttpContext</c> on the invocation, and it executes the
/// <c>IResult</c> set here as the invocation result against that context, as it does for a function's own result.
/// Cancellation of an aborted request is not a failure and is not answered.
/// </remarks>
public sealed partial class UnhandledHttpFailureMiddleware(ILogger<UnhandledHttpFailureMiddleware> logger) : IFunctionsWorkerMiddleware
{
    public async Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception exception) when (CanAnswer(context, exception))
        {
            UnhandledFailure(logger, exception, context.FunctionDefinition.Name, context.InvocationId);
            context.GetInvocationResult().Value = JsonResponse.Error(IngestError.Unexpected());
        }
    }

    private static bool CanAnswer(FunctionContext context, Exception exception) =>
        context.GetHttpContext() is { Response.HasStarted: false } httpContext
        && !(exception is OperationCanceledException
            && (context.CancellationToken.IsCancellationRequested || httpContext.RequestAborted.IsCancellationRequested));

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled failure in HTTP function {FunctionName} (invocation {InvocationId}); answered 500")]
    private static partial void UnhandledFailure(ILogger logger, Exception exception, string functionName, string invocationId);
}

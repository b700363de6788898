import * as $protobuf from "protobufjs";
import Long = require("long");

export namespace io {

    namespace statefun {

        namespace sdk {

            namespace egress {

                interface IKafkaProducerRecord extends io.statefun.sdk.egress.KafkaProducerRecord.$Properties {
                }

                class KafkaProducerRecord {
                    constructor(properties?: io.statefun.sdk.egress.KafkaProducerRecord.$Properties);
                    $unknowns?: Uint8Array[];
                    key: string;
                    valueBytes: Uint8Array;
                    topic: string;
                    static encode(message: io.statefun.sdk.egress.KafkaProducerRecord.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.egress.KafkaProducerRecord & io.statefun.sdk.egress.KafkaProducerRecord.$Shape;
                }

                namespace KafkaProducerRecord {
                    interface $Properties {
                        key?: (string|null);
                        valueBytes?: (Uint8Array|null);
                        topic?: (string|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.egress.KafkaProducerRecord.$Properties;
                }

                interface IKinesisEgressRecord extends io.statefun.sdk.egress.KinesisEgressRecord.$Properties {
                }

                class KinesisEgressRecord {
                    constructor(properties?: io.statefun.sdk.egress.KinesisEgressRecord.$Properties);
                    $unknowns?: Uint8Array[];
                    partitionKey: string;
                    valueBytes: Uint8Array;
                    stream: string;
                    explicitHashKey: string;
                    static encode(message: io.statefun.sdk.egress.KinesisEgressRecord.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.egress.KinesisEgressRecord & io.statefun.sdk.egress.KinesisEgressRecord.$Shape;
                }

                namespace KinesisEgressRecord {
                    interface $Properties {
                        partitionKey?: (string|null);
                        valueBytes?: (Uint8Array|null);
                        stream?: (string|null);
                        explicitHashKey?: (string|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.egress.KinesisEgressRecord.$Properties;
                }
            }

            namespace reqreply {

                interface IAddress extends io.statefun.sdk.reqreply.Address.$Properties {
                }

                class Address {
                    constructor(properties?: io.statefun.sdk.reqreply.Address.$Properties);
                    $unknowns?: Uint8Array[];
                    namespace: string;
                    type: string;
                    id: string;
                    static encode(message: io.statefun.sdk.reqreply.Address.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.Address & io.statefun.sdk.reqreply.Address.$Shape;
                }

                namespace Address {
                    interface $Properties {
                        namespace?: (string|null);
                        type?: (string|null);
                        id?: (string|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.reqreply.Address.$Properties;
                }

                interface ITypedValue extends io.statefun.sdk.reqreply.TypedValue.$Properties {
                }

                class TypedValue {
                    constructor(properties?: io.statefun.sdk.reqreply.TypedValue.$Properties);
                    $unknowns?: Uint8Array[];
                    typename: string;
                    hasValue: boolean;
                    value: Uint8Array;
                    static encode(message: io.statefun.sdk.reqreply.TypedValue.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.TypedValue & io.statefun.sdk.reqreply.TypedValue.$Shape;
                }

                namespace TypedValue {
                    interface $Properties {
                        typename?: (string|null);
                        hasValue?: (boolean|null);
                        value?: (Uint8Array|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.reqreply.TypedValue.$Properties;
                }

                interface IToFunction extends io.statefun.sdk.reqreply.ToFunction.$Properties {
                }

                class ToFunction {
                    constructor(properties?: io.statefun.sdk.reqreply.ToFunction.$Properties);
                    $unknowns?: Uint8Array[];
                    invocation?: (io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Properties|null);
                    request?: "invocation";
                    static encode(message: io.statefun.sdk.reqreply.ToFunction.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.ToFunction & io.statefun.sdk.reqreply.ToFunction.$Shape;
                }

                namespace ToFunction {
                    interface $Properties {
                        invocation?: (io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Properties|null);
                        request?: "invocation";
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = {
                      invocation?: io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Shape|null;
                      $unknowns?: Uint8Array[];
                    } & (
                      ({ request?: undefined; invocation?: null }|{ request?: "invocation"; invocation: io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Shape })
                    );

                    interface IPersistedValue extends io.statefun.sdk.reqreply.ToFunction.PersistedValue.$Properties {
                    }

                    class PersistedValue {
                        constructor(properties?: io.statefun.sdk.reqreply.ToFunction.PersistedValue.$Properties);
                        $unknowns?: Uint8Array[];
                        stateName: string;
                        stateValue?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                        static encode(message: io.statefun.sdk.reqreply.ToFunction.PersistedValue.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.ToFunction.PersistedValue & io.statefun.sdk.reqreply.ToFunction.PersistedValue.$Shape;
                    }

                    namespace PersistedValue {
                        interface $Properties {
                            stateName?: (string|null);
                            stateValue?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.ToFunction.PersistedValue.$Properties;
                    }

                    interface IInvocation extends io.statefun.sdk.reqreply.ToFunction.Invocation.$Properties {
                    }

                    class Invocation {
                        constructor(properties?: io.statefun.sdk.reqreply.ToFunction.Invocation.$Properties);
                        $unknowns?: Uint8Array[];
                        caller?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                        argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                        static encode(message: io.statefun.sdk.reqreply.ToFunction.Invocation.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.ToFunction.Invocation & io.statefun.sdk.reqreply.ToFunction.Invocation.$Shape;
                    }

                    namespace Invocation {
                        interface $Properties {
                            caller?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                            argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.ToFunction.Invocation.$Properties;
                    }

                    interface IInvocationBatchRequest extends io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Properties {
                    }

                    class InvocationBatchRequest {
                        constructor(properties?: io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Properties);
                        $unknowns?: Uint8Array[];
                        target?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                        state: io.statefun.sdk.reqreply.ToFunction.PersistedValue.$Properties[];
                        invocations: io.statefun.sdk.reqreply.ToFunction.Invocation.$Properties[];
                        static encode(message: io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest & io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Shape;
                    }

                    namespace InvocationBatchRequest {
                        interface $Properties {
                            target?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                            state?: (io.statefun.sdk.reqreply.ToFunction.PersistedValue.$Properties[]|null);
                            invocations?: (io.statefun.sdk.reqreply.ToFunction.Invocation.$Properties[]|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.ToFunction.InvocationBatchRequest.$Properties;
                    }
                }

                interface IFromFunction extends io.statefun.sdk.reqreply.FromFunction.$Properties {
                }

                class FromFunction {
                    constructor(properties?: io.statefun.sdk.reqreply.FromFunction.$Properties);
                    $unknowns?: Uint8Array[];
                    invocationResult?: (io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Properties|null);
                    incompleteInvocationContext?: (io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Properties|null);
                    response?: ("invocationResult"|"incompleteInvocationContext");
                    static encode(message: io.statefun.sdk.reqreply.FromFunction.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction & io.statefun.sdk.reqreply.FromFunction.$Shape;
                }

                namespace FromFunction {
                    interface $Properties {
                        invocationResult?: (io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Properties|null);
                        incompleteInvocationContext?: (io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Properties|null);
                        response?: ("invocationResult"|"incompleteInvocationContext");
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = {
                      invocationResult?: io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Shape|null;
                      incompleteInvocationContext?: io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Shape|null;
                      $unknowns?: Uint8Array[];
                    } & (
                      ({ response?: undefined; invocationResult?: null; incompleteInvocationContext?: null }|{ response?: "invocationResult"; invocationResult: io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Shape; incompleteInvocationContext?: null }|{ response?: "incompleteInvocationContext"; invocationResult?: null; incompleteInvocationContext: io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Shape })
                    );

                    interface IPersistedValueMutation extends io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.$Properties {
                    }

                    class PersistedValueMutation {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.$Properties);
                        $unknowns?: Uint8Array[];
                        mutationType: io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.MutationType;
                        stateName: string;
                        stateValue?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation & io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.$Shape;
                    }

                    namespace PersistedValueMutation {
                        interface $Properties {
                            mutationType?: (io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.MutationType|null);
                            stateName?: (string|null);
                            stateValue?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.$Properties;

                        enum MutationType {
                            DELETE = 0,
                            MODIFY = 1
                        }
                    }

                    interface IInvocation extends io.statefun.sdk.reqreply.FromFunction.Invocation.$Properties {
                    }

                    class Invocation {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.Invocation.$Properties);
                        $unknowns?: Uint8Array[];
                        target?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                        argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.Invocation.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.Invocation & io.statefun.sdk.reqreply.FromFunction.Invocation.$Shape;
                    }

                    namespace Invocation {
                        interface $Properties {
                            target?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                            argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.Invocation.$Properties;
                    }

                    interface IDelayedInvocation extends io.statefun.sdk.reqreply.FromFunction.DelayedInvocation.$Properties {
                    }

                    class DelayedInvocation {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.DelayedInvocation.$Properties);
                        $unknowns?: Uint8Array[];
                        isCancellationRequest: boolean;
                        cancellationToken: string;
                        delayInMs: number;
                        target?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                        argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.DelayedInvocation.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.DelayedInvocation & io.statefun.sdk.reqreply.FromFunction.DelayedInvocation.$Shape;
                    }

                    namespace DelayedInvocation {
                        interface $Properties {
                            isCancellationRequest?: (boolean|null);
                            cancellationToken?: (string|null);
                            delayInMs?: (number|null);
                            target?: (io.statefun.sdk.reqreply.Address.$Properties|null);
                            argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.DelayedInvocation.$Properties;
                    }

                    interface IEgressMessage extends io.statefun.sdk.reqreply.FromFunction.EgressMessage.$Properties {
                    }

                    class EgressMessage {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.EgressMessage.$Properties);
                        $unknowns?: Uint8Array[];
                        egressNamespace: string;
                        egressType: string;
                        argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.EgressMessage.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.EgressMessage & io.statefun.sdk.reqreply.FromFunction.EgressMessage.$Shape;
                    }

                    namespace EgressMessage {
                        interface $Properties {
                            egressNamespace?: (string|null);
                            egressType?: (string|null);
                            argument?: (io.statefun.sdk.reqreply.TypedValue.$Properties|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.EgressMessage.$Properties;
                    }

                    interface IInvocationResponse extends io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Properties {
                    }

                    class InvocationResponse {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Properties);
                        $unknowns?: Uint8Array[];
                        stateMutations: io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.$Properties[];
                        outgoingMessages: io.statefun.sdk.reqreply.FromFunction.Invocation.$Properties[];
                        delayedInvocations: io.statefun.sdk.reqreply.FromFunction.DelayedInvocation.$Properties[];
                        outgoingEgresses: io.statefun.sdk.reqreply.FromFunction.EgressMessage.$Properties[];
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.InvocationResponse & io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Shape;
                    }

                    namespace InvocationResponse {
                        interface $Properties {
                            stateMutations?: (io.statefun.sdk.reqreply.FromFunction.PersistedValueMutation.$Properties[]|null);
                            outgoingMessages?: (io.statefun.sdk.reqreply.FromFunction.Invocation.$Properties[]|null);
                            delayedInvocations?: (io.statefun.sdk.reqreply.FromFunction.DelayedInvocation.$Properties[]|null);
                            outgoingEgresses?: (io.statefun.sdk.reqreply.FromFunction.EgressMessage.$Properties[]|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.InvocationResponse.$Properties;
                    }

                    interface IExpirationSpec extends io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.$Properties {
                    }

                    class ExpirationSpec {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.$Properties);
                        $unknowns?: Uint8Array[];
                        mode: io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.ExpireMode;
                        expireAfterMillis: number;
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.ExpirationSpec & io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.$Shape;
                    }

                    namespace ExpirationSpec {
                        interface $Properties {
                            mode?: (io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.ExpireMode|null);
                            expireAfterMillis?: (number|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.$Properties;

                        enum ExpireMode {
                            NONE = 0,
                            AFTER_WRITE = 1,
                            AFTER_INVOKE = 2
                        }
                    }

                    interface IPersistedValueSpec extends io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec.$Properties {
                    }

                    class PersistedValueSpec {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec.$Properties);
                        $unknowns?: Uint8Array[];
                        stateName: string;
                        expirationSpec?: (io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.$Properties|null);
                        typeTypename: string;
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec & io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec.$Shape;
                    }

                    namespace PersistedValueSpec {
                        interface $Properties {
                            stateName?: (string|null);
                            expirationSpec?: (io.statefun.sdk.reqreply.FromFunction.ExpirationSpec.$Properties|null);
                            typeTypename?: (string|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec.$Properties;
                    }

                    interface IIncompleteInvocationContext extends io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Properties {
                    }

                    class IncompleteInvocationContext {
                        constructor(properties?: io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Properties);
                        $unknowns?: Uint8Array[];
                        missingValues: io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec.$Properties[];
                        static encode(message: io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                        static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext & io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Shape;
                    }

                    namespace IncompleteInvocationContext {
                        interface $Properties {
                            missingValues?: (io.statefun.sdk.reqreply.FromFunction.PersistedValueSpec.$Properties[]|null);
                            $unknowns?: Uint8Array[];
                        }
                        type $Shape = io.statefun.sdk.reqreply.FromFunction.IncompleteInvocationContext.$Properties;
                    }
                }
            }

            namespace types {

                interface IBooleanWrapper extends io.statefun.sdk.types.BooleanWrapper.$Properties {
                }

                class BooleanWrapper {
                    constructor(properties?: io.statefun.sdk.types.BooleanWrapper.$Properties);
                    $unknowns?: Uint8Array[];
                    value: boolean;
                    static encode(message: io.statefun.sdk.types.BooleanWrapper.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.types.BooleanWrapper & io.statefun.sdk.types.BooleanWrapper.$Shape;
                }

                namespace BooleanWrapper {
                    interface $Properties {
                        value?: (boolean|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.types.BooleanWrapper.$Properties;
                }

                interface IIntWrapper extends io.statefun.sdk.types.IntWrapper.$Properties {
                }

                class IntWrapper {
                    constructor(properties?: io.statefun.sdk.types.IntWrapper.$Properties);
                    $unknowns?: Uint8Array[];
                    value: number;
                    static encode(message: io.statefun.sdk.types.IntWrapper.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.types.IntWrapper & io.statefun.sdk.types.IntWrapper.$Shape;
                }

                namespace IntWrapper {
                    interface $Properties {
                        value?: (number|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.types.IntWrapper.$Properties;
                }

                interface IFloatWrapper extends io.statefun.sdk.types.FloatWrapper.$Properties {
                }

                class FloatWrapper {
                    constructor(properties?: io.statefun.sdk.types.FloatWrapper.$Properties);
                    $unknowns?: Uint8Array[];
                    value: number;
                    static encode(message: io.statefun.sdk.types.FloatWrapper.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.types.FloatWrapper & io.statefun.sdk.types.FloatWrapper.$Shape;
                }

                namespace FloatWrapper {
                    interface $Properties {
                        value?: (number|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.types.FloatWrapper.$Properties;
                }

                interface ILongWrapper extends io.statefun.sdk.types.LongWrapper.$Properties {
                }

                class LongWrapper {
                    constructor(properties?: io.statefun.sdk.types.LongWrapper.$Properties);
                    $unknowns?: Uint8Array[];
                    value: number;
                    static encode(message: io.statefun.sdk.types.LongWrapper.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.types.LongWrapper & io.statefun.sdk.types.LongWrapper.$Shape;
                }

                namespace LongWrapper {
                    interface $Properties {
                        value?: (number|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.types.LongWrapper.$Properties;
                }

                interface IDoubleWrapper extends io.statefun.sdk.types.DoubleWrapper.$Properties {
                }

                class DoubleWrapper {
                    constructor(properties?: io.statefun.sdk.types.DoubleWrapper.$Properties);
                    $unknowns?: Uint8Array[];
                    value: number;
                    static encode(message: io.statefun.sdk.types.DoubleWrapper.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.types.DoubleWrapper & io.statefun.sdk.types.DoubleWrapper.$Shape;
                }

                namespace DoubleWrapper {
                    interface $Properties {
                        value?: (number|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.types.DoubleWrapper.$Properties;
                }

                interface IStringWrapper extends io.statefun.sdk.types.StringWrapper.$Properties {
                }

                class StringWrapper {
                    constructor(properties?: io.statefun.sdk.types.StringWrapper.$Properties);
                    $unknowns?: Uint8Array[];
                    value: string;
                    static encode(message: io.statefun.sdk.types.StringWrapper.$Properties, writer?: $protobuf.Writer): $protobuf.Writer;
                    static decode(reader: ($protobuf.Reader|Uint8Array), length?: number): io.statefun.sdk.types.StringWrapper & io.statefun.sdk.types.StringWrapper.$Shape;
                }

                namespace StringWrapper {
                    interface $Properties {
                        value?: (string|null);
                        $unknowns?: Uint8Array[];
                    }
                    type $Shape = io.statefun.sdk.types.StringWrapper.$Properties;
                }
            }
        }
    }
}

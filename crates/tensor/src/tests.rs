use super::*;
use half::{bf16, f16};

fn proto(dtype: i32, dims: &[i64]) -> TensorProto {
    TensorProto { dtype, tensor_shape: Some(shape_proto(dims)), ..Default::default() }
}

#[test]
fn fill_rule_repeats_last_value() {
    let mut p = proto(dt::FLOAT, &[4]);
    p.float_val = vec![1.0, 2.0];
    let t = Tensor::from_proto(&p).unwrap();
    assert_eq!(t.values::<f32>().unwrap(), vec![1.0, 2.0, 2.0, 2.0]);
}

#[test]
fn empty_typed_field_is_zeros() {
    let t = Tensor::from_proto(&proto(dt::INT64, &[2, 2])).unwrap();
    assert_eq!(t.values::<i64>().unwrap(), vec![0; 4]);
}

#[test]
fn half_val_holds_bit_patterns() {
    // fp16 1.5 = 0x3E00 = 15872, bf16 1.5 = 0x3FC0 = 16320.
    let mut p = proto(dt::HALF, &[1]);
    p.half_val = vec![15872];
    assert_eq!(Tensor::from_proto(&p).unwrap().values::<f16>().unwrap(), vec![f16::from_f32(1.5)]);
    let mut p = proto(dt::BFLOAT16, &[1]);
    p.half_val = vec![16320];
    let t = Tensor::from_proto(&p).unwrap();
    assert_eq!(t.values::<bf16>().unwrap(), vec![bf16::from_f32(1.5)]);
    assert_eq!(t.to_proto_typed().half_val, vec![16320]);
}

#[test]
fn content_is_a_zero_copy_slice() {
    let buf = Bytes::from(vec![0u8; 8]);
    let mut p = proto(dt::FLOAT, &[2]);
    p.tensor_content = buf.slice(0..8);
    let t = Tensor::from_proto(&p).unwrap();
    assert_eq!(t.raw().unwrap().as_ptr(), buf.as_ptr());
}

#[test]
fn both_encodings_round_trip() {
    let cases: Vec<Tensor> = vec![
        Tensor::from_values(dt::FLOAT, &[2, 2], &[1.0f32, -2.0, 3.5, 0.0]).unwrap(),
        Tensor::from_values(dt::INT8, &[3], &[-128i8, 0, 127]).unwrap(),
        Tensor::from_values(dt::QUINT8, &[2], &[0u8, 255]).unwrap(),
        Tensor::from_values(dt::INT16, &[2], &[-300i16, 300]).unwrap(),
        Tensor::from_values(dt::UINT16, &[1], &[65535u16]).unwrap(),
        Tensor::from_values(dt::UINT64, &[1], &[u64::MAX]).unwrap(),
        Tensor::from_values(dt::BOOL, &[2], &[true, false]).unwrap(),
        Tensor::from_strings(&[2], vec![b"a".to_vec(), vec![0xff, 0x00]]).unwrap(),
    ];
    for t in cases {
        assert_eq!(Tensor::from_proto(&t.to_proto()).unwrap(), t, "content form of {t:?}");
        assert_eq!(Tensor::from_proto(&t.to_proto_typed()).unwrap(), t, "typed form of {t:?}");
    }
}

#[test]
fn bad_tensors_are_errors_not_panics() {
    let mut p = proto(dt::FLOAT, &[3]);
    p.tensor_content = Bytes::from_static(&[0; 8]);
    assert!(matches!(Tensor::from_proto(&p), Err(TensorError::ContentSize { .. })));

    let mut huge = proto(dt::FLOAT, &[1_000_000_000_000]);
    huge.float_val = vec![0.0];
    assert!(matches!(Tensor::from_proto(&huge), Err(TensorError::TooLarge { .. })));

    let overflow = proto(dt::FLOAT, &[i64::MAX, i64::MAX]);
    assert!(matches!(Tensor::from_proto(&overflow), Err(TensorError::TooLarge { .. })));

    let mut many = proto(dt::INT32, &[1]);
    many.int_val = vec![1, 2];
    assert!(matches!(Tensor::from_proto(&many), Err(TensorError::TooManyValues { .. })));

    let mut s = proto(dt::STRING, &[1]);
    s.tensor_content = Bytes::from_static(b"x");
    assert!(matches!(Tensor::from_proto(&s), Err(TensorError::ContentNotAllowed(_))));

    assert!(matches!(Tensor::from_proto(&proto(0, &[1])), Err(TensorError::UnsupportedDtype(_))));
    let t = Tensor::from_values(dt::FLOAT, &[1], &[1.0f32]).unwrap();
    assert!(matches!(t.values::<i32>(), Err(TensorError::DtypeMismatch { .. })));
}

#[test]
fn huge_splats_are_refused_before_allocating() {
    // 499 bytes on disk, 1.6 GB in memory: over the splat limit.
    let mut p = proto(dt::FLOAT, &[20000, 20000]);
    p.float_val = vec![0.5];
    let e = Tensor::from_proto(&p).unwrap_err().to_string();
    assert_eq!(
        e,
        "tensor of shape [20000,20000] and dtype float32 is too large (expanding 1 stored \
         value(s) to 400000000 elements takes 3200000000 bytes, over the 268435456-byte limit \
         for splat constants)"
    );
    // Strings count their bytes and 24 per element: a 100 KB string repeated 10,000 times.
    let mut p = proto(dt::STRING, &[10_000]);
    p.string_val = vec![vec![b'x'; 100_000]];
    let e = Tensor::from_proto(&p).unwrap_err().to_string();
    assert!(e.contains("takes 1000240000 bytes"), "{e}");
    // 2^31 empty strings, or resource handles, would be tens of gigabytes of headers.
    for dtype in [dt::STRING, dt::RESOURCE, dt::VARIANT] {
        let e = Tensor::from_proto(&proto(dtype, &[1 << 31])).unwrap_err().to_string();
        assert!(e.contains("limit for splat constants"), "{e}");
    }
    // Under the limit, and a field that holds every value, decode as before.
    let mut p = proto(dt::FLOAT, &[1000, 1000]);
    p.float_val = vec![0.5];
    assert_eq!(Tensor::from_proto(&p).unwrap().byte_size(), 4_000_000);
    let mut p = proto(dt::STRING, &[3]);
    p.string_val = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
    assert!(Tensor::from_proto(&p).is_ok());
    assert_eq!(max_splat_bytes(), DEFAULT_MAX_SPLAT_BYTES);
}
